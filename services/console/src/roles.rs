//! Who may do what: the one table every page and API route asks. What a role may do
//! to a given object (a tenant admin and their own tenant's domains) is the object's
//! question (`may_manage_domain`, `may_manage_account`), asked after this one.

use crate::accounts::{Account, Role};

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See held mail and refusals (within the reader's scope).
    ReadMail,
    /// Release held mail.
    ReleaseMail,
    /// Delete held mail, or report it as spam.
    DeleteMail,
    /// Change allow / block lists.
    EditLists,
    ReadReports,
    ReadTenants,
    ManageTenants,
    ReadDomains,
    ManageDomains,
    ReadAccounts,
    ManageAccounts,
    /// Their own password and tokens.
    ManageSelf,
    /// See the mail waiting in the queue (within their scope).
    ReadQueue,
    /// Hold, release, retry, bounce or delete queued mail (within their scope).
    ManageQueue,
}

/// Whether `role` may do `permission` at all.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match permission {
        ReadMail | ManageSelf => true,
        ReleaseMail => matches!(role, Operator | Helpdesk | TenantAdmin | User),
        DeleteMail | EditLists => matches!(role, Operator | TenantAdmin | User),
        ReadReports | ReadTenants | ReadDomains | ReadAccounts => matches!(role, Operator | Helpdesk | Auditor | TenantAdmin),
        ManageTenants => role == Operator,
        ReadQueue => matches!(role, Operator | Helpdesk | Auditor | TenantAdmin),
        ManageQueue => matches!(role, Operator | Helpdesk | TenantAdmin),
        ManageDomains | ManageAccounts => matches!(role, Operator | TenantAdmin),
    }
}

/// Whether `viewer` may see or change (after `allows`) the domain `name` owned by
/// `tenant`: staff every domain, a tenant admin their tenant's and their listed ones.
pub fn may_touch_domain(viewer: &Account, name: &str, tenant: Option<&str>) -> bool {
    viewer.role.is_staff()
        || viewer.role == Role::TenantAdmin
            && (viewer.tenant.is_some() && viewer.tenant.as_deref() == tenant || viewer.domains.iter().any(|d| d == name))
}

/// Whether `viewer` may see or change (after `allows`) the account `target`: staff
/// everyone, a tenant admin the accounts of their tenant or domains (never staff), a
/// user only themselves.
pub fn may_touch_account(viewer: &Account, target: &Account) -> bool {
    if viewer.email == target.email || viewer.role.is_staff() {
        return true;
    }
    viewer.role == Role::TenantAdmin
        && !target.role.is_staff()
        && (viewer.tenant.is_some() && viewer.tenant == target.tenant || viewer.domains.iter().any(|d| d == target.domain()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The roles table of docs/console.md, as the code has it.
    #[test]
    fn the_roles_table() {
        use Permission::*;
        let table: &[(Permission, [bool; 5])] = &[
            //               operator helpdesk auditor tenant-admin user
            (ReadMail, [true, true, true, true, true]),
            (ReleaseMail, [true, true, false, true, true]),
            (DeleteMail, [true, false, false, true, true]),
            (EditLists, [true, false, false, true, true]),
            (ReadReports, [true, true, true, true, false]),
            (ReadTenants, [true, true, true, true, false]),
            (ManageTenants, [true, false, false, false, false]),
            (ReadDomains, [true, true, true, true, false]),
            (ManageDomains, [true, false, false, true, false]),
            (ReadAccounts, [true, true, true, true, false]),
            (ManageAccounts, [true, false, false, true, false]),
            (ManageSelf, [true, true, true, true, true]),
            (ReadQueue, [true, true, true, true, false]),
            (ManageQueue, [true, true, false, true, false]),
        ];
        for (permission, expected) in table {
            for (role, allowed) in Role::ALL.iter().zip(expected) {
                assert_eq!(allows(*role, *permission), *allowed, "{role} {permission:?}");
            }
        }
    }
}
