//! `--generate man|bash|zsh|fish` (hidden, as `rg --generate`): the man
//! page or shell completions of a program, from its clap definition, so
//! they never disagree with `--help`. `make man` and the packages call it.

use clap::Command;
use std::io::Write;
use std::process::ExitCode;

/// What `--generate` takes.
pub const KINDS: [&str; 4] = ["man", "bash", "zsh", "fish"];

/// Writes `kind` for `cmd` to stdout.
pub fn generate(mut cmd: Command, kind: &str, section: &str) -> ExitCode {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    let done = match kind {
        "man" => clap_mangen::Man::new(cmd)
            .section(section)
            .render(&mut out)
            .map_err(|e| e.to_string()),
        shell => match shell.parse::<clap_complete::Shell>() {
            Ok(sh) => {
                clap_complete::generate(sh, &mut cmd, name.clone(), &mut out);
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = done {
        eprintln!("{name}: --generate {kind}: {e}");
        return ExitCode::from(2);
    }
    match std::io::stdout().lock().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
