//! Property tests of the stages before the namespaces: generated command lines and environments
//! go through parse → plan → prepare in the test process, as `run` and `enter` take them (no
//! namespace, no privilege). Whatever the input:
//!
//! - nothing panics;
//! - the result is a plan, or an error that renders as exactly one line (no control character,
//!   valid UTF-8, bounded length), whatever bytes the arguments hold;
//! - a capacity is refused with its own error, and the last input that fits is accepted;
//! - the same input gives the same result.
//!
//! Inputs: argv of any bytes, and command lines driven by the option table ([`OPTIONS`]): every
//! option with relative, empty, very long, `..`-laden, control-character and non-UTF-8 values,
//! options missing their arguments, `--` anywhere, one item repeated up to past its capacity;
//! environments with entries without `=`, with an empty name, repeated names, bytes that are not
//! UTF-8, very long values, up to past the capacity.
//!
//! `make check` runs [`CHECK_CASES`] cases per property from a fixed seed; `make proptest` sets
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (proptest's own variables) for a longer run.
//! `--pack-fds` is parsed but not run here: it would take over the test harness's descriptors
//! (the end-to-end suites run it for real).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

use super::prepare;
use crate::cli::{self, MAX_BINFMT_RULES, MAX_ENV_EDITS, MAX_LOWERDIRS, MAX_OPS, Parsed};
use crate::containers::Bump;
use crate::error::Error;
use crate::line::{LINE_CAP, Line};
use crate::options::OPTIONS;
use crate::process::env::{Environment, MAX_ENV};
use crate::request::{Op, Settings};
use crate::subid::MAX_RANGES;
use crate::sys::InheritedFds;
use crate::{plan, process};

/// Cases per property in `make check` (a few seconds for all of them in a debug build).
const CHECK_CASES: u32 = 100;
/// The seed of `make check`'s runs.
const CHECK_SEED: u64 = 19;

fn config() -> Config {
    // XorShift: ChaCha, unoptimised in a test build, took a third of the time.
    let mut config = Config { failure_persistence: None, rng_algorithm: RngAlgorithm::XorShift, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CHECK_CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(CHECK_SEED);
    }
    config
}

thread_local! {
    /// Every distinct string given to the stages, leaked once: they take `&'static` strings, as
    /// argv and environ are. Repeated items share one.
    static INTERNED: RefCell<HashMap<Vec<u8>, &'static CStr>> = RefCell::new(HashMap::new());
}

fn intern(bytes: &[u8]) -> &'static CStr {
    INTERNED.with(|map| {
        *map.borrow_mut()
            .entry(bytes.to_vec())
            .or_insert_with(|| Box::leak(CString::new(bytes).expect("no NUL in generated input").into_boxed_c_str()))
    })
}

/// Generated words (argv or environ entries), shown as escaped strings when a case fails.
#[derive(Clone, PartialEq, Eq)]
struct Words(Vec<Vec<u8>>);

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The first and last few of a long list (fillers, repeated options) are enough.
        let shown = |w: &Vec<u8>| format!("{}", w.escape_ascii());
        let n = self.0.len();
        if n <= 40 {
            return f.debug_list().entries(self.0.iter().map(shown)).finish();
        }
        let skipped = format!("... {} more ...", n - 36);
        let middle = std::iter::once(skipped);
        f.debug_list()
            .entries(self.0[..32].iter().map(shown).chain(middle).chain(self.0[n - 4..].iter().map(shown)))
            .finish()
    }
}

/// What the stages made of an input, comparable between two runs.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Help,
    Version,
    /// The plan, the command's environment, what `prepare` learnt (as text: it has no `Eq`) and
    /// the settings.
    Ready {
        ops: Vec<Op>,
        env: Vec<&'static CStr>,
        prepared: String,
        settings: Settings,
    },
    /// The error's line.
    Refused(Vec<u8>),
}

/// What the kernel lets argv and environ hold together at the default stack limit (ARG_MAX):
/// generated command lines stay below it, as real ones must.
const ARG_MAX: usize = 2 << 20;

/// Bytes for derived strings: enough for any command line that execve() could pass (sort keys,
/// `--setenv` entries and `LISTEN_*` are made of argv's bytes, a few times over; the cwd fits in
/// 4 KiB), at most the program's own store, unless the case asks for a small one (`tight`).
/// Leaked with each case: the stages take it `'static`, as they take argv.
fn derived_bytes(args: &[&CStr], tight: Option<usize>) -> usize {
    let input: usize = args.iter().map(|s| s.to_bytes().len() + 1).sum();
    tight.unwrap_or((16 << 10) + 4 * input).min(super::MAX_DERIVED_BYTES)
}

/// Runs parse → plan → prepare on `args` (argv without the program) and `env` as `run` does.
fn stages(args: &[&'static CStr], env: &[&'static CStr], tight: Option<usize>) -> Outcome {
    let mut cli_storage = Box::<cli::Storage>::default();
    let request = match cli::parse(args, &mut cli_storage) {
        Ok(Parsed::Run(request)) => request,
        Ok(Parsed::Help) => return Outcome::Help,
        Ok(Parsed::Version) => return Outcome::Version,
        Err(e) => return Outcome::Refused(line_of(&e)),
    };
    let mut env_storage = Box::<process::env::Storage>::default();
    let mut environment = match Environment::inherit(env.iter().copied(), &mut env_storage) {
        Ok(environment) => environment,
        Err(e) => return Outcome::Refused(line_of(&e)),
    };
    let mut plan_storage = Box::new(plan::Storage::new());
    let mut fds = Box::<process::fds::Storage>::default();
    let derived = Box::leak(vec![0u8; derived_bytes(args, tight)].into_boxed_slice());
    let mut bump = Bump::new(derived);
    // Never spent: without --pack-fds `prepare` touches no descriptor (see the module's docs).
    let settings = Settings { pack_fds: false, ..request.settings };
    let inherited = InheritedFds::unspent_in_tests();
    match prepare(&request, &settings, &mut environment, &mut plan_storage, &mut fds, inherited, &mut bump) {
        Ok((plan, prepared)) => Outcome::Ready {
            ops: plan.iter().copied().collect(),
            env: environment.entries().to_vec(),
            prepared: format!("{prepared:?}"),
            settings: request.settings,
        },
        Err(e) => Outcome::Refused(line_of(&e)),
    }
}

fn line_of(e: &Error) -> Vec<u8> {
    let mut line = Line::new();
    e.render(&mut line);
    line.as_bytes().to_vec()
}

/// The longest line an error can take: its words, two values shortened and escaped (four bytes
/// for each shown), and a remedy.
const MAX_ERROR_LINE: usize = 1024 + 2 * (4 * 2 * crate::line::VALUE_PART + 4);

/// Runs the input twice and checks the properties; returns the outcome.
fn check(args: &[&'static CStr], env: &[&'static CStr], tight: Option<usize>) -> Result<Outcome, TestCaseError> {
    let first = stages(args, env, tight);
    let again = stages(args, env, tight);
    prop_assert_eq!(&first, &again, "the same input gave another result");
    if let Outcome::Refused(line) = &first {
        let text = std::str::from_utf8(line);
        prop_assert!(text.is_ok(), "not UTF-8: {:?}", String::from_utf8_lossy(line));
        let text = text.unwrap_or_default();
        prop_assert!(text.starts_with("mkosi-sandbox: ") && text.ends_with('\n'), "{:?}", text);
        // One line for any reader: no other control character, nor what Python's splitlines()
        // or a terminal takes for a line break.
        let breaks = |c: char| c.is_control() && c != '\n' || matches!(c, '\u{2028}' | '\u{2029}');
        prop_assert!(text.matches('\n').count() == 1 && !text.contains(breaks), "{:?}", text);
        prop_assert!(line.len() <= MAX_ERROR_LINE && line.len() < LINE_CAP, "{} bytes: {:?}", line.len(), text);
        if tight.is_none() {
            prop_assert!(!text.contains("derived strings"), "the store was sized for the input: {:?}", text);
        }
    }
    Ok(first)
}

// ---- Generators -------------------------------------------------------------------------------

/// Any argument bytes (argv holds no NUL).
fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 0..=max)
}

/// A path-like value: relative, empty, very long, `..`-laden, odd bytes, and plain ones.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let component = prop_oneof![
        Just(b"..".to_vec()),
        Just(b".".to_vec()),
        Just(b"".to_vec()),
        Just(b"a".to_vec()),
        Just(b"tmp".to_vec()),
        Just(b"usr".to_vec()),
        Just(b"oldroot".to_vec()),
        Just(b"a\nb".to_vec()),
        Just(b"\x1b[2J".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just("é✓\u{2028}\u{85}".as_bytes().to_vec()),
        Just(vec![b'x'; 255]),
        Just(vec![b'y'; 256]),
        any_bytes(8).prop_map(|b| b.into_iter().filter(|&c| c != b'/').collect()),
    ];
    let path = (
        prop_oneof![Just(""), Just("/"), Just("+"), Just("+/"), Just("//"), Just("../")],
        prop::collection::vec(component, 0..12),
        any::<bool>(),
    )
        .prop_map(|(lead, parts, trailing)| {
            let mut p = lead.as_bytes().to_vec();
            p.extend(parts.join(&b'/'));
            if trailing {
                p.push(b'/');
            }
            p
        });
    prop_oneof![
        6 => path,
        1 => Just(b"".to_vec()),
        // Very long: about PATH_MAX and past it, and past what a line shows whole.
        1 => prop_oneof![Just(255usize), Just(4095), Just(4096), Just(4097), Just(70_000)].prop_map(|n| {
            let mut p = b"/".to_vec();
            p.extend(std::iter::repeat_n(b"abcdefg/".iter().copied(), n / 8 + 1).flatten().take(n));
            p
        }),
        1 => Just(b"/../../../../..".repeat(300)),
        1 => any_bytes(40),
        // Numbers and id triples for --exec-fd and --map-*; words the parser knows.
        1 => prop_oneof![
            Just("3"), Just("-1"), Just("99999999999999999999"), Just("0:1000:1"), Just("1:100000:65536"),
            Just("4294967295:0:1"), Just("x:y:z"), Just("tmpfs"), Just("--"), Just("-x"), Just("--help"),
        ].prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// One option from the table with values for all its arguments.
fn option_with_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (0..OPTIONS.len(), prop::collection::vec(value(), 2), any::<bool>()).prop_map(|(i, values, short)| {
        let spec = &OPTIONS[i];
        let name = if short && !spec.short.is_empty() { spec.short } else { spec.name };
        let mut item = vec![name.as_bytes().to_vec()];
        item.extend(values.into_iter().take(usize::from(spec.arity)));
        item
    })
}

/// A command line: options from the table, perhaps one repeated many times, `--` somewhere,
/// perhaps cut short (the last option missing arguments), perhaps a command. Most are meant to be
/// planned (see `planned`), the rest are refused somewhere.
fn command_line() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let repeat = prop_oneof![
        8 => Just(1usize),
        1 => 0usize..2000,
        // Around the capacities: operations, lowerdirs, --setenv/--unsetenv, binfmt rules, ranges.
        1 => prop::sample::select(vec![
            MAX_OPS, MAX_OPS + 1, MAX_LOWERDIRS, MAX_LOWERDIRS + 1, MAX_ENV_EDITS + 1, MAX_BINFMT_RULES + 1,
            MAX_RANGES + 1,
        ]),
    ];
    (
        prop::collection::vec(option_with_values(), 0..12),
        option_with_values(),
        repeat,
        any::<prop::sample::Index>(),
        prop_oneof![3 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
        prop_oneof![3 => Just(0usize), 1 => 1usize..3],
        prop::collection::vec(value(), 0..3),
        prop::bool::weighted(0.7),
    )
        .prop_map(|(items, repeated, times, at, dashdash, cut, command, planned)| {
            let mut items = items;
            let at = at.index(items.len() + 1);
            // No more than execve() could pass.
            let size: usize = repeated.iter().map(|w| w.len() + 1).sum();
            let times = times.min(ARG_MAX / size.max(1));
            items.splice(at..at, std::iter::repeat_n(repeated, times));
            if planned {
                // Most lines are meant to reach the planner: no option that ends parsing at once,
                // every value absolute (a bind's source may be `+`), the odd bytes kept.
                const ENDING: &[&str] = &[
                    "-h",
                    "--help",
                    "--version",
                    "--bind-foreign",
                    "--ro-bind-foreign",
                    "--map-delegate",
                    "--exec-fd",
                    "--map-users",
                    "--map-groups",
                ];
                items.retain(|item| !ENDING.iter().any(|o| item[0] == o.as_bytes()));
                for item in &mut items {
                    let bind = item[0].windows(4).any(|w| w == b"bind");
                    for (i, value) in item.iter_mut().enumerate().skip(1) {
                        let keep = value.first() == Some(&b'/') || (bind && i == 1 && value.first() == Some(&b'+'));
                        if !keep {
                            value.insert(0, b'/');
                        }
                    }
                }
            }
            let mut words: Vec<Vec<u8>> = items.into_iter().flatten().collect();
            if let Some(i) = dashdash {
                let i = i.index(words.len() + 1);
                words.insert(i, b"--".to_vec());
            }
            words.truncate(words.len().saturating_sub(cut));
            words.extend(command);
            words
        })
}

/// Words of any bytes, options among them.
fn any_argv() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let word = prop_oneof![
        3 => any_bytes(24),
        1 => (0..OPTIONS.len()).prop_map(|i| OPTIONS[i].name.as_bytes().to_vec()),
        1 => Just(b"--".to_vec()),
    ];
    // Sometimes the same words many times over: counts up to past the capacities.
    let times = prop_oneof![4 => Just(1usize), 1 => 1usize..700];
    (prop::collection::vec(word, 0..48), times).prop_map(|(words, times)| {
        let size: usize = words.iter().map(|w| w.len() + 1).sum();
        let times = times.min(ARG_MAX / size.max(1));
        std::iter::repeat_n(words, times).flatten().collect()
    })
}

/// An environment entry: the odd cases, LISTEN_* and PATH, very long values, any bytes.
fn env_entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (prop::sample::select(vec!["A", "B", "PATH", "TERM", "LISTEN_FDS", "LISTEN_PID", "", "=", "A=1"]), any_bytes(12), any::<bool>())
            .prop_map(|(name, value, bare)| {
                let mut e = name.as_bytes().to_vec();
                if !bare {
                    e.push(b'=');
                    e.extend(value);
                }
                e
            }),
        1 => Just(b"".to_vec()),
        1 => prop_oneof![Just(300usize), Just(5000), Just(130_000)].prop_map(|n| {
            let mut e = b"LONG=".to_vec();
            e.extend(std::iter::repeat_n(b'v', n));
            e
        }),
        1 => any_bytes(30),
    ]
}

fn environment() -> impl Strategy<Value = (Words, usize)> {
    let filler = prop_oneof![8 => Just(0usize), 1 => 0usize..MAX_ENV, 1 => prop::sample::select(vec![MAX_ENV - 1, MAX_ENV, MAX_ENV + 1])];
    (prop::collection::vec(env_entry(), 0..16).prop_map(Words), filler)
}

/// The generated environment: its entries, then `filler` entries `F<n>=x` (up to past the
/// capacity).
fn env_of(entries: &Words, filler: usize) -> Vec<&'static CStr> {
    let mut env: Vec<&'static CStr> = entries.0.iter().map(|e| intern(e)).collect();
    env.extend((0..filler).map(|n| intern(format!("F{n}=x").as_bytes())));
    env
}

fn args_of(words: &Words) -> Vec<&'static CStr> {
    words.0.iter().map(|w| intern(w)).collect()
}

/// An option that edits the command's environment, or may.
#[derive(Clone, Debug)]
enum Edit {
    Set(&'static str, Vec<u8>),
    Unset(&'static str),
    /// `--pack-fds`, `--unshare-pid`, `--same-dir`: not run here (`--pack-fds`) or no edit before
    /// the command's process (`LISTEN_PID`).
    Other(&'static str),
}

/// Environment edits over the odd entries: --setenv/--unsetenv of such names.
fn env_edits() -> impl Strategy<Value = Vec<Edit>> {
    let name =
        prop::sample::select(vec!["A", "B", "PATH", "TERM", "LISTEN_FDS", "LISTEN_PID", "", "A=1", "=", "\u{85}"]);
    let edit = prop_oneof![
        (name.clone(), any_bytes(8)).prop_map(|(n, v)| Edit::Set(n, v)),
        name.prop_map(Edit::Unset),
        prop::sample::select(vec!["--pack-fds", "--unshare-pid", "--same-dir"]).prop_map(Edit::Other),
    ];
    prop::collection::vec(edit, 0..8)
}

fn words_of(edits: &[Edit]) -> Words {
    Words(
        edits
            .iter()
            .flat_map(|edit| match edit {
                Edit::Set(name, value) => vec![b"--setenv".to_vec(), name.as_bytes().to_vec(), value.clone()],
                Edit::Unset(name) => vec![b"--unsetenv".to_vec(), name.as_bytes().to_vec()],
                Edit::Other(option) => vec![option.as_bytes().to_vec()],
            })
            .collect(),
    )
}

/// The command's environment as the original makes it (checked against CPython 3.11 running it:
/// tests/environment.rs), written from glibc's description rather than from `process::env`:
/// setenv() replaces the first `NAME=` entry or appends, unsetenv() drops every `NAME=` entry of a
/// name that `os.environ` has, an empty name or one with `=` cannot be set, and an empty one that
/// some entry has cannot be unset. None: refused.
fn model(env: &[&CStr], edits: &[Edit]) -> Option<Vec<Vec<u8>>> {
    let mut env: Vec<Vec<u8>> = env.iter().map(|e| e.to_bytes().to_vec()).collect();
    let is =
        |entry: &[u8], name: &str| entry.strip_prefix(name.as_bytes()).is_some_and(|rest| rest.first() == Some(&b'='));
    let sets = edits.iter().filter_map(|e| if let Edit::Set(n, v) = e { Some((*n, v)) } else { None });
    let unsets = edits.iter().filter_map(|e| if let Edit::Unset(n) = e { Some(*n) } else { None });
    if sets.clone().any(|(name, _)| name.is_empty() || name.contains('=')) || env.len() > MAX_ENV {
        return None;
    }
    for (name, value) in sets {
        let entry = [name.as_bytes(), b"=", value].concat();
        match env.iter().position(|e| is(e, name)) {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
        // The capacity holds at every step: a --setenv past it is refused even if an --unsetenv
        // would make room again (`make proptest` found the model without this).
        if env.len() > MAX_ENV {
            return None;
        }
    }
    for name in unsets {
        // `name in os.environ` first: its keys end before an entry's first `=`, so a name with
        // `=` is none of them (glibc's unsetenv("A=1") would drop `A=1=`: `make proptest` found
        // the model wrong there, not the stages).
        if name.contains('=') {
            continue;
        }
        if name.is_empty() && env.iter().any(|e| is(e, name)) {
            return None;
        }
        env.retain(|e| !is(e, name));
    }
    (env.len() <= MAX_ENV).then_some(env)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn command_lines_from_the_option_table(words in command_line().prop_map(Words), (entries, filler) in environment()) {
        check(&args_of(&words), &env_of(&entries, filler), None)?;
    }

    #[test]
    fn argv_of_any_bytes(words in any_argv().prop_map(Words), (entries, filler) in environment()) {
        check(&args_of(&words), &env_of(&entries, filler), None)?;
    }

    #[test]
    fn environments_and_their_edits(edits in env_edits(), (entries, filler) in environment()) {
        let env = env_of(&entries, filler);
        let outcome = check(&args_of(&words_of(&edits)), &env, None)?;
        match (model(&env, &edits), &outcome) {
            (Some(want), Outcome::Ready { env: got, .. }) => {
                let got: Vec<Vec<u8>> = got.iter().map(|e| e.to_bytes().to_vec()).collect();
                prop_assert_eq!(Words(got), Words(want));
            }
            (None, Outcome::Refused(_)) => {}
            (want, _) => {
                let got = match &outcome {
                    Outcome::Refused(line) => String::from_utf8_lossy(line).into_owned(),
                    Outcome::Ready { env, .. } => format!("{:?}", Words(env.iter().map(|e| e.to_bytes().to_vec()).collect())),
                    other => format!("{other:?}"),
                };
                prop_assert!(false, "the model says {:?}, the stages {}", want.map(Words), got)
            }
        }
    }

    #[test]
    fn a_small_store_for_derived_strings_is_a_clean_error(words in command_line().prop_map(Words), tight in 0usize..4096) {
        check(&args_of(&words), &[], Some(tight))?;
    }
}

/// The capacities, each at its limit (accepted) and one past it (refused with its own line).
#[test]
fn capacities_are_refused_cleanly_and_exactly() {
    let refused = |args: &[&'static CStr], env: &[&'static CStr]| match check(args, env, None).unwrap() {
        Outcome::Refused(line) => String::from_utf8(line).unwrap(),
        other => panic!("accepted: {other:?}"),
    };
    let accepted = |args: &[&'static CStr], env: &[&'static CStr]| {
        let outcome = check(args, env, None).unwrap();
        assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    };
    let repeat = |words: &[&str], n: usize| -> Vec<&'static CStr> {
        let words: Vec<_> = words.iter().map(|w| intern(w.as_bytes())).collect();
        std::iter::repeat_n(words, n).flatten().collect()
    };
    for (words, max, text) in [
        (&["--dir", "/a"][..], MAX_OPS, "too many operations (max 8192)"),
        (&["--overlay-lowerdir", "/l"], MAX_LOWERDIRS, "too many --overlay-lowerdir entries (max 1024)"),
        (&["--setenv", "A", "1"], MAX_ENV_EDITS, "too many --setenv entries (max 1024)"),
        (&["--unsetenv", "A"], MAX_ENV_EDITS, "too many --unsetenv entries (max 1024)"),
        (&["--binfmt-register", ":x:M::ab::/i:F"], MAX_BINFMT_RULES, "too many --binfmt-register rules (max 256)"),
        (&["--map-users", "0:0:1"], MAX_RANGES, "too many --map-users (max 340)"),
    ] {
        accepted(&repeat(words, max), &[]);
        assert_eq!(refused(&repeat(words, max + 1), &[]), format!("mkosi-sandbox: {text}\n"), "{words:?}");
    }
    let env = |n: usize| env_of(&Words(vec![]), n);
    accepted(&[], &env(MAX_ENV));
    let full = "mkosi-sandbox: too many environment entries (max 4096)\n";
    assert_eq!(refused(&[], &env(MAX_ENV + 1)), full);
    // A full environment takes a new variable from --setenv no more, an old one still.
    accepted(&repeat(&["--setenv", "F7", "y"], 1), &env(MAX_ENV));
    assert_eq!(refused(&repeat(&["--setenv", "NEW", "y"], 1), &env(MAX_ENV)), full);
}

/// The counterexamples found so far, kept as cases.
#[test]
fn counterexamples() {
    // A bare PATH (LISTEN_FDS, LISTEN_PID) in the environment: get() sliced past the entry.
    for bare in ["PATH", "LISTEN_FDS", "LISTEN_PID"] {
        let outcome = check(&[intern(b"--pack-fds")], &[intern(bare.as_bytes())], None).unwrap();
        assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    }
    // A newline in a path, and multi-line --write data.
    let lines = [
        (&[&b"--ro-bind"[..], b"3", b"/a\nb", b"--ro-bind", b"/nope", b"rel"][..], "--ro-bind /nope rel"),
        (&[b"--write", b"root:x:0:0\npmos:x:1:1\n", b"rel"], "--write root:x:0:0\\npmos:x:1:1\\n rel"),
        (&[b"--tmpfs", b"/a\nb", b"--dir", b"x\ty"], "--dir x\\ty"),
    ];
    for (args, want) in lines {
        let args: Vec<&'static CStr> = args.iter().map(|a| intern(a)).collect();
        let Outcome::Refused(line) = check(&args, &[], None).unwrap() else { panic!("{args:?}") };
        let line = String::from_utf8(line).unwrap();
        assert_eq!(line, format!("mkosi-sandbox: {want}: destination is not an absolute path\n"));
    }
}
