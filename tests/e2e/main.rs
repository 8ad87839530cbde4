//! exo's end-to-end tests: the real `exo` binary, real plugin libraries (and, where a test says
//! so, the sandbox tenant on an ephemeral loopback port).
#![allow(clippy::unwrap_used)] // a test binary: a failed unwrap is a failed test

mod basic_auth;
mod certificate;
mod chromium;
mod cmdlets;
mod connect;
mod contract;
mod interactive;
mod keyring;
mod managed_identity;
mod oidc_provider;
mod plugins;
mod session;
mod workload_identity;
