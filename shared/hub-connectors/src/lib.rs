//! Declarative connector runtime over reqwest, and the sample CRM API.
