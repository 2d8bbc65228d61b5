//! The data model of the integrations specification.
