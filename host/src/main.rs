//! The `exo` binary; everything lives in the library (see `lib.rs`).

fn main() -> std::process::ExitCode {
    exo::main()
}
