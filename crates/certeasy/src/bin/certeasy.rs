//! The `certeasy` command.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    certeasy::cli::main()
}
