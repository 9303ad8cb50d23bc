//! What the statistical classifier reads of a message, as rspamd keeps its tokenizer
//! apart (libstat): the message's analysis (`message`: MIME parts, text, HTML, links,
//! attachments and ZIP listings) and the tokens Bayes and the token regression learn
//! from (`tokens`). The scanner scores with them; the console and `rempart learn`
//! learn with them, without linking the scanner. The Bayes model and the token
//! regression live with their storage in `rempart-state`.

pub mod archive;
pub mod hosts;
pub mod html;
pub mod message;
pub mod tokens;
