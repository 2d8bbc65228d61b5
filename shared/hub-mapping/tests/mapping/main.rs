//! Behaviour of the conversion engine, through its public API only.

mod compile_errors;
mod conditions;
mod edge_cases;
mod expressions;
mod mappings;
mod records;
mod seed_examples;
mod support;
mod transformations;
