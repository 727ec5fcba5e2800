//! The `ronode` binary.

mod cli;
mod config;
mod init;
mod inspect;
mod keystore;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand, FrameCommand};
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Init(args) => match init::ensure_keys(&args.data_dir) {
            Ok(keys) => {
                for file in &keys.created {
                    eprintln!("created {}", args.data_dir.join(file).display());
                }
                println!("data_dir {}", args.data_dir.display());
                println!("cap_kid {}", hex::encode(keys.cap_kid));
                print_line(&format!("node_id {}", keys.identity.node_id()))
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Frame(FrameCommand::Decode(args)) => frame_decode(&args.hex),
        Command::Frame(FrameCommand::Hello(args)) => {
            match inspect::hello_frame(&args.ua, args.corr, args.tenant, args.max_frame) {
                Ok(bytes) => print_line(&hex::encode(bytes)),
                Err(e) => fail(&e, 1),
            }
        }
        Command::Config(ConfigCommand::Show(args)) => config_show(&args),
        Command::Config(ConfigCommand::Knobs) => print_line(&format!(
            "{}\n{}",
            config::markdown::knob_table(),
            config::markdown::profile_table().trim_end()
        )),
    }
}

/// `ronode config show`: the effective configuration, or exit 2 naming what is wrong.
fn config_show(args: &cli::NodeArgs) -> ExitCode {
    let shown = config::process_env()
        .and_then(|env| config::NodeConfig::load(&args.overrides(), &env))
        .and_then(|c| c.to_toml_string());
    match shown {
        Ok(text) => print_line(text.trim_end()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn frame_decode(arg: &str) -> ExitCode {
    let text = if arg == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("error: io: reading stdin: {e}");
            return ExitCode::from(2);
        }
        s
    } else {
        arg.to_owned()
    };
    let bytes = match inspect::parse_hex(&text) {
        Ok(b) => b,
        Err(e) => return fail(&e, 2),
    };
    match inspect::decode(bytes) {
        Ok(report) => print_line(&serde_json::to_string(&report).expect("report serializes")),
        Err(e) => fail(&e, 1),
    }
}

fn print_line(s: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

fn fail(e: &inspect::InspectError, code: u8) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(code)
}
