//! Prints the `export.res` of YAML customization files:
//! `cargo run -p soar-customizations --example export_res -- a.yaml [b.yaml ...] > export.res`.
//! Validation problems go to stderr and the exit status is 1.

use std::process::ExitCode;

use soar_customizations::{Customizations, Source};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let mut texts = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => texts.push(text),
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let sources: Vec<Source<'_>> = files
        .iter()
        .zip(&texts)
        .map(|(file, text)| Source { file, text })
        .collect();
    let c = match Customizations::parse(&sources).and_then(|c| c.validate().map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", c.export_res());
    ExitCode::SUCCESS
}
