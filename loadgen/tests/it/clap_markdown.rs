//! A command line's reference page, rendered from its clap definition, so the book's reference
//! cannot drift from `--help`. loadgen's `readme` tests render loadgen's and the server's
//! `Command` and compare each with the committed page under `docs/src/reference/`;
//! `FEEDLAB_WRITE_DOCS=1` writes the pages instead.

use std::fmt::Write as _;

/// The whole page: an intro, then one section per command and visible subcommand, each with its
/// usage and its options grouped under their `--help` headings, as tables.
pub fn render(cmd: &clap::Command, title: &str, intro: &str, regenerate: &str) -> String {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut out = format!(
        "# {title}\n\n<!-- Generated from the clap definitions by `{regenerate}`: edit the code's doc comments, not this file. -->\n\n{intro}\n"
    );
    section(&mut out, &cmd, cmd.get_name());
    out
}

fn section(out: &mut String, cmd: &clap::Command, path: &str) {
    let _ = write!(out, "\n## `{path}`\n\n");
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        let _ = write!(out, "{}\n\n", cell_paragraphs(&about.to_string()));
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim();
    let _ = writeln!(out, "```text\n{usage}\n```");

    let mut headings: Vec<(String, Vec<&clap::Arg>)> = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let heading = if arg.is_positional() {
            "Arguments".to_owned()
        } else {
            arg.get_help_heading().unwrap_or("Options").to_owned()
        };
        match headings.iter_mut().find(|(h, _)| *h == heading) {
            Some((_, args)) => args.push(arg),
            None => headings.push((heading, vec![arg])),
        }
    }
    for (heading, args) in &headings {
        let _ = writeln!(
            out,
            "\n**{heading}**\n\n| option | environment | default | what it does |\n|---|---|---|---|"
        );
        for arg in args {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                name(arg),
                arg.get_env()
                    .map_or(String::new(), |e| format!("`{}`", e.to_string_lossy())),
                defaults(arg),
                cell(&help(arg)),
            );
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        section(out, sub, &format!("{path} {}", sub.get_name()));
    }
}

fn name(arg: &clap::Arg) -> String {
    let values = arg
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
    if arg.is_positional() {
        return format!("`{values}`");
    }
    let takes_value = arg.get_action().takes_values();
    let mut flag = match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (None, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => arg.get_id().to_string(),
    };
    if takes_value {
        flag = format!("{flag} {values}");
    }
    format!("`{flag}`")
}

fn defaults(arg: &clap::Arg) -> String {
    if !arg.get_action().takes_values() {
        return String::new(); // a switch: off unless given
    }
    let d: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if d.is_empty() {
        String::new()
    } else {
        format!("`{}`", d.join(","))
    }
}

fn help(arg: &clap::Arg) -> String {
    let mut text = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() && arg.get_action().takes_values() {
        let _ = write!(text, " (one of {})", values.join(", "));
    }
    text
}

/// Doc comments wrap at the source's width: one line per paragraph, blank lines kept.
fn cell_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(cell)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// One table cell: one line, `|` escaped, and `<`, `>` outside code escaped so that Markdown
/// renderers do not take `<out>` for an HTML tag.
fn cell(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for ch in line.chars() {
        match ch {
            '`' => {
                in_code = !in_code;
                out.push(ch);
            }
            '|' => out.push_str("\\|"),
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Compares `rendered` with the committed page at `path`, or writes it under
/// `FEEDLAB_WRITE_DOCS=1`.
pub fn check_or_write(path: &std::path::Path, rendered: &str, regenerate: &str) {
    if std::env::var("FEEDLAB_WRITE_DOCS").as_deref() == Ok("1") {
        std::fs::write(path, rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} is not what the clap definitions render (a flag or its doc comment changed); \
         rewrite it with `{regenerate}` and commit it",
        path.display()
    );
}
