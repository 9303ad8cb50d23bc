//! Composite symbols (rspamd): a symbol that hits when a boolean expression of other
//! symbols is true. Grammar: `expr := and ('|' and)*`, `and := not ('&' not)*`,
//! `not := '!' not | NAME | '(' expr ')'`.

/// Why a composite expression does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Symbol(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// Nesting deeper than this is refused (it is a configuration, not a program).
const MAX_DEPTH: usize = 32;

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, pos: 0 };
        let expr = p.or(0)?;
        match p.tokens.get(p.pos) {
            None => Ok(expr),
            Some(t) => Err(ExprError(format!("unexpected {t:?} at token {}", p.pos + 1))),
        }
    }

    pub fn eval(&self, has: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Expr::Symbol(s) => has(s),
            Expr::Not(e) => !e.eval(has),
            Expr::And(a, b) => a.eval(has) && b.eval(has),
            Expr::Or(a, b) => a.eval(has) || b.eval(has),
        }
    }

    pub fn symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Symbol(s) => out.push(s.clone()),
            Expr::Not(e) => e.symbols(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.symbols(out);
                b.symbols(out);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '&' | '|' => {
                chars.next();
                // Accept `&&` and `||` too.
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                tokens.push(if c == '&' { Token::And } else { Token::Or });
            }
            '!' => {
                chars.next();
                tokens.push(Token::Not);
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut name = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
                    name.push(c);
                    chars.next();
                }
                tokens.push(Token::Name(name));
            }
            other => return Err(ExprError(format!("unexpected character {other:?}"))),
        }
    }
    if tokens.is_empty() {
        return Err(ExprError("empty expression".into()));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn or(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.and(depth)?;
        while self.eat(&Token::Or) {
            left = Expr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.not(depth)?;
        while self.eat(&Token::And) {
            left = Expr::And(Box::new(left), Box::new(self.not(depth)?));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, ExprError> {
        if depth > MAX_DEPTH {
            return Err(ExprError("expression nested too deeply".into()));
        }
        if self.eat(&Token::Not) {
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Name(n)) => {
                self.pos += 1;
                Ok(Expr::Symbol(n))
            }
            Some(Token::Open) => {
                self.pos += 1;
                let e = self.or(depth + 1)?;
                if !self.eat(&Token::Close) {
                    return Err(ExprError("missing ')'".into()));
                }
                Ok(e)
            }
            Some(t) => Err(ExprError(format!("unexpected {t:?} at token {}", self.pos + 1))),
            None => Err(ExprError("expression ends too early".into())),
        }
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.tokens.get(self.pos) == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Expr;

    #[test]
    fn parses_and_evaluates_with_precedence() {
        let e = Expr::parse("A & !B | (C && D)").unwrap();
        let eval = |set: &[&str]| e.eval(&|s| set.contains(&s));
        assert!(eval(&["A"]));
        assert!(!eval(&["A", "B"]));
        assert!(eval(&["A", "B", "C", "D"]));
        assert!(!eval(&["C"]));
    }

    #[test]
    fn rejects_bad_expressions() {
        for bad in ["", "A &", "(A | B", "A B", "A $ B", "!", &"(".repeat(100)] {
            assert!(Expr::parse(bad).is_err(), "{bad}");
        }
    }
}
