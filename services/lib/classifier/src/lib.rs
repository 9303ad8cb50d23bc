//! What the statistical classifier reads of a message, as rspamd keeps its tokenizer
//! apart (libstat): the message's analysis (`message`: MIME parts, text, HTML, links,
//! attachments, `attachments`: what each really is and holds) and the tokens Bayes and the token regression learn
//! from (`tokens`). The scanner scores with them; the console and `rempart learn`
//! learn with them, without linking the scanner; the classifiers themselves: Bayes
//! (`bayes`: the model, chi-square) and the token regression (`linear`: its fit).
//! Their storage is `rempart_state::bayes`'s.

pub mod attachments;
pub mod bayes;
pub mod fuzzy;
pub mod hosts;
pub mod html;
pub mod linear;
pub mod message;
pub mod tokens;
