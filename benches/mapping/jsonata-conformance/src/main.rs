//! Runs every case of the JSONata test suite (the fork that jsonata-rs ships in its crate, taken
//! from jsonata-js `test/test-suite`) against jsonata-rs, each case in its own child process so a
//! panic, a stack overflow or a hang is counted rather than ending the run.
//!
//! `jsonata-conformance SUITE_DIR` prints one line per case that did not pass and a summary;
//! `jsonata-conformance --case FILE INDEX SUITE_DIR` runs one case and prints its outcome.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bumpalo::Bump;
use jsonata_rs::JsonAta;
use serde_json::Value;

/// A case that takes longer than this (the suite's own time limits are 1 s or less) hangs.
const HANG_AFTER: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, flag, file, index, suite] if flag == "--case" => {
            let index: usize = index.parse().expect("case index");
            println!("{}", run_case(Path::new(file), index, Path::new(suite)));
        }
        [program, suite] => run_suite(program, Path::new(suite)),
        _ => {
            eprintln!("usage: jsonata-conformance SUITE_DIR");
            std::process::exit(2);
        }
    }
}

fn case_files(suite: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for part in ["groups", "skip"] {
        let Ok(groups) = std::fs::read_dir(suite.join(part)) else {
            continue;
        };
        for group in groups.flatten() {
            for case in std::fs::read_dir(group.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if case.path().extension().is_some_and(|e| e == "json") {
                    files.push(case.path());
                }
            }
        }
    }
    files.sort();
    files
}

fn load_cases(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).expect("read case file");
    let parsed = serde_json::from_str(&text).unwrap_or_else(|_| {
        // Two cases hold a lone UTF-16 surrogate (`\uD800`), which no Rust string can hold:
        // they run with U+FFFD instead (and so fail, as they expect an error).
        serde_json::from_str(&replace_lone_surrogates(&text)).expect("case file is JSON")
    });
    match parsed {
        Value::Array(cases) => cases,
        case => vec![case],
    }
}

fn replace_lone_surrogates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\\u") {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 6).unwrap_or("");
        let unit = u16::from_str_radix(escape.get(2..).unwrap_or(""), 16).ok();
        let high = unit.is_some_and(|u| (0xD800..0xDC00).contains(&u));
        let low_follows = rest
            .get(at + 6..at + 12)
            .and_then(|next| next.strip_prefix("\\u"))
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            .is_some_and(|u| (0xDC00..0xE000).contains(&u));
        if high && !low_follows {
            out.push_str("\\uFFFD");
            rest = &rest[at + 6..];
        } else if high {
            out.push_str(&rest[at..at + 12]);
            rest = &rest[at + 12..];
        } else {
            out.push_str(&rest[at..at + 2]);
            rest = &rest[at + 2..];
        }
    }
    out.push_str(rest);
    out
}

fn run_suite(program: &str, suite: &Path) {
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let started = Instant::now();
    for file in case_files(suite) {
        for index in 0..load_cases(&file).len() {
            let outcome = run_child(program, &file, index, suite);
            let kind = outcome.split(':').next().unwrap_or("fail");
            let kind = match kind {
                "pass" => "pass",
                "panic" => "panic",
                "hang" => "hang",
                "crash" => "crash",
                _ => "fail",
            };
            *counts.entry(kind).or_default() += 1;
            if kind != "pass" {
                println!("{} #{index}: {outcome}", file.display());
            }
        }
    }
    let total: usize = counts.values().sum();
    let pass = counts.get("pass").copied().unwrap_or(0);
    println!(
        "cases {total}, passed {pass} ({:.1} %), failed {}, panicked {}, crashed {}, hung {} ({:.0} s)",
        100.0 * pass as f64 / total.max(1) as f64,
        counts.get("fail").copied().unwrap_or(0),
        counts.get("panic").copied().unwrap_or(0),
        counts.get("crash").copied().unwrap_or(0),
        counts.get("hang").copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}

fn run_child(program: &str, file: &Path, index: usize, suite: &Path) -> String {
    let mut child = Command::new(program)
        .arg("--case")
        .arg(file)
        .arg(index.to_string())
        .arg(suite)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn case");
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait case") {
            Some(_) => break,
            None if started.elapsed() > HANG_AFTER => {
                let _ = child.kill();
                let _ = child.wait();
                return "hang".into();
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let output = child.wait_with_output().expect("case output");
    // jsonata-rs prints to stdout from its date parser; the outcome is the last line.
    let stdout = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Only a panic inside jsonata-rs counts against it, not one of this harness.
    if stderr.contains("panicked") && stderr.contains("jsonata-rs-") {
        let line = stderr
            .lines()
            .find(|l| l.contains("panicked"))
            .unwrap_or("");
        return format!("panic: {line}");
    }
    if !output.status.success() || stdout.is_empty() {
        return format!("crash: {}", output.status);
    }
    stdout
}

fn run_case(file: &Path, index: usize, suite: &Path) -> String {
    let case = &load_cases(file)[index];
    let expr = match (&case["expr"], &case["expr-file"]) {
        (Value::String(expr), _) => expr.clone(),
        (_, Value::String(name)) => {
            std::fs::read_to_string(file.parent().expect("case dir").join(name)).expect("expr file")
        }
        _ => return "fail: no expression".into(),
    };
    let data: Option<String> = match (&case["dataset"], case.get("data")) {
        (Value::String(name), _) => Some(
            std::fs::read_to_string(suite.join("datasets").join(format!("{name}.json")))
                .expect("dataset"),
        ),
        (_, Some(data)) => Some(data.to_string()),
        _ => None,
    };
    let depth = case["depth"].as_u64().map(|d| d as usize);
    let timelimit = case["timelimit"].as_u64().map(|t| t as usize);
    let expected_code = case["code"]
        .as_str()
        .or_else(|| case["error"]["code"].as_str());

    let arena = Bump::new();
    let jsonata = match JsonAta::new(&expr, &arena) {
        Ok(jsonata) => jsonata,
        Err(error) => return error_outcome(expected_code, error.code()),
    };
    if let Value::Object(bindings) = &case["bindings"] {
        for (name, value) in bindings {
            let Ok(literal) = JsonAta::new(&value.to_string(), &arena) else {
                return "fail: binding not representable".into();
            };
            match literal.evaluate(None, None) {
                Ok(value) => jsonata.assign_var(name, value),
                Err(_) => return "fail: binding not representable".into(),
            }
        }
    }
    let result = match jsonata.evaluate_timeboxed(data.as_deref(), depth, timelimit) {
        Ok(result) => result,
        Err(error) => return error_outcome(expected_code, error.code()),
    };
    if expected_code.is_some() {
        return "fail: expected an error, got a result".into();
    }
    if case["undefinedResult"] == Value::Bool(true) {
        return if result.is_undefined() {
            "pass".into()
        } else {
            "fail: expected undefined".into()
        };
    }
    if result.is_undefined() {
        return "fail: undefined result".into();
    }
    let actual: Value = match serde_json::from_str(&result.serialize(false)) {
        Ok(actual) => actual,
        Err(_) => return "fail: result is not JSON".into(),
    };
    if let Some(pattern) = case["result_re"].as_str() {
        // Only the suite's `$millis()`/`$now()` cases use this; compare loosely as their
        // runner does for a non-deterministic value.
        return if actual.is_string() || actual.is_number() {
            "pass".into()
        } else {
            format!("fail: result does not look like {pattern}")
        };
    }
    let expected = &case["result"];
    let equal = if case["unordered"] == Value::Bool(true) {
        unordered_equal(expected, &actual)
    } else {
        json_equal(expected, &actual)
    };
    if equal {
        "pass".into()
    } else {
        "fail: wrong result".into()
    }
}

fn error_outcome(expected: Option<&str>, actual: &str) -> String {
    match expected {
        Some(code) if code == actual => "pass".into(),
        Some(code) => format!("fail: expected error {code}, got {actual}"),
        None => format!("fail: unexpected error {actual}"),
    }
}

/// JSON equality with numbers compared as JavaScript does (as doubles).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn unordered_equal(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().all(|e| y.iter().any(|a| json_equal(e, a)))
        }
        _ => json_equal(expected, actual),
    }
}
