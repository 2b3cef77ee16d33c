//! `lab-adcs` binary; see the library documentation.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lab_adcs::cli::main()
}
