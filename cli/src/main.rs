fn main() -> std::process::ExitCode {
    jitr_cli::main()
}
