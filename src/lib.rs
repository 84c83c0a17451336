//! Tessera: a desktop image editor whose small generative models regenerate only the
//! masked part of a picture. ARCHITECTURE.md in the repository tells how it fits
//! together: the editor and the command line both talk to [`engine::Engine`]; each
//! model lives in its own module, and what they share (the token machinery, the
//! training loop, the network blocks) in modules of its own.

pub mod allocator;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod distribution;
pub mod editor;
pub mod engine;
pub mod evaluate;
pub mod faces;
pub mod hit;
pub mod ilat;
pub mod imagebart;
pub mod metrics;
pub mod nn;
pub mod paths;
pub mod region;
pub mod report;
pub mod store;
pub mod tokens;
pub mod training;
pub mod vqgan;
pub mod worker;
