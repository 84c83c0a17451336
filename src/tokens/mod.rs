//! The token machinery every token model shares: iLAT, the Taming baseline and
//! ImageBART's reverse steps all draw tokens the same way ([`sampling`]), decode the
//! masked tokens of a grid with the same KV-cached loop ([`decode`]) and train on the
//! same teacher-forced objective ([`objective`]), and see the tokenizer through one
//! trait ([`tokenizer`]). No model module imports another model module: what they
//! share lives here.

pub mod decode;
pub mod objective;
pub mod sampling;
pub mod tokenizer;

pub use decode::DecodeError;
pub use sampling::Sampling;
pub use tokenizer::Tokenizer;
