//! The documentation cannot drift from the code: the options of the one table
//! (`mkosi_sandbox::options::OPTIONS`), those that the parser accepts, that `--help` lists, that
//! the man page documents and that the bash completion offers are one set, and the completion
//! knows how many arguments each takes. A failure names each option and exactly where it is
//! missing.

mod common;
use mkosi_sandbox::options::OPTIONS;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MAN: &str = "doc/mkosi-sandbox.1";
const COMPLETION: &str = "completions/bash/mkosi-sandbox";

fn source(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `--long-option` token in `text` (after `\-` is read as `-`).
fn long_options(text: &str) -> BTreeSet<String> {
    let text = text.replace("\\-", "-");
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        let name: String =
            text[i + 2..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-').collect();
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            found.insert(format!("--{}", name.trim_end_matches('-')));
        }
    }
    found
}

/// The options the man page documents: the `.TP` (and `.TQ`) entries of its OPTIONS section.
fn man_options() -> BTreeSet<String> {
    let man = source(MAN);
    let section = man.split("\n.SH OPTIONS\n").nth(1).expect("the man page has an OPTIONS section");
    let section = section.split("\n.SH ").next().unwrap();
    let lines: Vec<&str> = section.lines().collect();
    lines.windows(2).filter(|w| w[0] == ".TP" || w[0] == ".TQ").flat_map(|w| long_options(w[1])).collect()
}

/// The options `--help` lists: the first word of each indented option line.
fn help_options() -> BTreeSet<String> {
    let out = Command::new(common::binary()).arg("--help").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stderr).unwrap();
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("-h ").trim_start();
            l.starts_with("--").then(|| l.split_whitespace().next().unwrap().to_string())
        })
        .collect()
}

/// The options the completion offers: its option lists (before the word-walking code).
fn completion_options() -> BTreeSet<String> {
    let text = source(COMPLETION);
    let lists = text.split("# Walk the words").next().unwrap();
    long_options(lists)
}

/// The options of the completion's list `name` (`flags`, `one_arg`, `two_args`).
fn completion_list(name: &str) -> BTreeSet<String> {
    let text = source(COMPLETION);
    let start = format!("local {name}=\"");
    let list = text.split(&start).nth(1).unwrap_or_else(|| panic!("{COMPLETION} has no list {name}"));
    long_options(list.split('"').next().unwrap())
}

/// The table's long names (its short ones, `-h`, are not `--options`).
fn table_options() -> BTreeSet<String> {
    OPTIONS.iter().map(|spec| spec.name.to_string()).collect()
}

/// Whether the parser accepts `option`: followed by unknown options (which any option's
/// arguments would swallow first), it fails on one of those, not on `option` itself.
fn parser_accepts(option: &str) -> bool {
    let probes = ["--zz-probe-1", "--zz-probe-2", "--zz-probe-3", "--zz-probe-4", "--zz-probe-5"];
    let out = Command::new("timeout")
        .arg("10")
        .arg(common::binary())
        .arg(option)
        .args(probes)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(124), "{option} --zz-probe-*: timed out");
    !err.starts_with(&format!("mkosi-sandbox: {option}: unrecognized option"))
}

/// Every "--name" string literal in the sources under `dir`, with the file it is in; `code_only`:
/// not in unit tests (after `#[cfg(test)]`), where made-up names are probes.
fn source_literals(dir: &Path, code_only: bool, found: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_literals(&path, code_only, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = if code_only { text.split("#[cfg(test)]").next().unwrap().to_string() } else { text };
            for piece in text.split('"').skip(1).step_by(2) {
                if piece.len() > 2 && long_options(piece).iter().any(|o| o == piece) {
                    found.entry(piece.to_string()).or_insert_with(|| path.clone());
                }
            }
        }
    }
}

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn man_page_help_completion_and_parser_list_the_same_options() {
    let man = man_options();
    let help = help_options();
    let completion = completion_options();
    // Candidates for the parser's options: besides the places above, every "--name" in the sources.
    let mut literals = BTreeMap::new();
    source_literals(&sources(), false, &mut literals);
    let mut candidates: BTreeSet<String> = literals.into_keys().collect();
    let table = table_options();
    candidates.extend(table.iter().cloned());
    candidates.extend(man.iter().cloned());
    candidates.extend(help.iter().cloned());
    candidates.extend(completion.iter().cloned());
    let parser: BTreeSet<String> = candidates.into_iter().filter(|o| parser_accepts(o)).collect();
    assert!(parser.contains("--ro-bind") && parser.contains("--help"), "parser probe broken: {parser:?}");

    let places: [(&str, &BTreeSet<String>); 5] = [
        ("the table (src/options.rs)", &table),
        ("the parser", &parser),
        ("--help", &help),
        (MAN, &man),
        (COMPLETION, &completion),
    ];
    let all: BTreeSet<&String> = places.iter().flat_map(|(_, set)| set.iter()).collect();
    let mut problems = Vec::new();
    for option in all {
        let (has, lacks): (Vec<_>, Vec<_>) = places.iter().partition(|(_, set)| set.contains(option));
        if !lacks.is_empty() {
            let names = |v: &[&(&str, &BTreeSet<String>)]| v.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
            problems.push(format!("{option}: in {}; missing from {}", names(&has), names(&lacks)));
        }
    }
    assert!(
        problems.is_empty(),
        "options differ between the parser, --help, the man page and the completion:\n  {}\n",
        problems.join("\n  ")
    );
}

#[test]
fn options_named_in_messages_are_options_of_the_table() {
    // Messages name the option they are about ("--pack-fds: ..."): each name written in the code
    // must be one of the table's, or a typo would name an option that does not exist.
    let mut literals = BTreeMap::new();
    source_literals(&sources(), true, &mut literals);
    let table = table_options();
    let strays: Vec<String> = literals
        .iter()
        .filter(|(name, _)| !table.contains(*name))
        .map(|(name, path)| format!("{name} ({})", path.display()))
        .collect();
    assert!(literals.contains_key("--pack-fds"), "source scan broken: {literals:?}");
    assert!(strays.is_empty(), "not options of src/options.rs: {strays:?}");
}

#[test]
fn completion_knows_how_many_arguments_each_option_takes() {
    for (list, arity) in [("flags", 0), ("one_arg", 1), ("two_args", 2)] {
        let table: BTreeSet<String> =
            OPTIONS.iter().filter(|spec| spec.arity == arity).map(|spec| spec.name.to_string()).collect();
        assert_eq!(completion_list(list), table, "{COMPLETION}: list {list} against the table's arity {arity}");
    }
}

#[test]
fn man_page_states_the_help_texts_limits() {
    // The capacities are quoted in --help; the man page's LIMITS section must carry the same numbers.
    let out = Command::new(common::binary()).arg("--help").stdin(Stdio::null()).output().unwrap();
    let help = String::from_utf8(out.stderr).unwrap();
    let limits = help.split("Limits:").nth(1).expect("--help states the limits");
    let limits = limits.split("\n\n").next().unwrap();
    let man = source(MAN).replace("\\-", "-");
    let man_limits = man.split("\n.SH LIMITS\n").nth(1).expect("the man page has a LIMITS section");
    let man_limits = man_limits.split("\n.SH ").next().unwrap();
    for number in limits.split(|c: char| !c.is_ascii_digit()).filter(|n| !n.is_empty()) {
        assert!(man_limits.contains(number), "--help's limit {number} is not in the man page's LIMITS section");
    }
}
