//! End-to-end tests: every flow over real HTTPS (reqwest trusting only the sandbox CA).

mod support;

mod assertion_forms;
mod bad_input;
mod cli;
mod exchange;
mod faults;
mod identity;
mod legacy;
mod limits;
mod managed_identity;
mod pages;
mod third_party;
