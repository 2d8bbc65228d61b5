//! Custom expressions (`custom` transformations and `custom` conditions), in the Rhai language,
//! sandboxed: no I/O (no modules, no `print`, no `eval`, no clock), a bounded number of
//! operations and wall-clock time, bounded sizes of strings, arrays and maps, bounded nesting
//! and call depth. docs/mapping.md says why Rhai rather than JSONata.
//!
//! An expression sees `value` (the value being transformed, or the condition's field), `record`
//! (the whole source record, as a map) and `task` (the sync task's config, as a map). Missing
//! fields read as `()`. Numbers arrive as integers (`i64`) or floats (`f64`): a number beyond
//! both arrives as the nearest float.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{AST, Array, Dynamic, Engine, EvalAltResult, ImmutableString, Scope};
use serde_json::{Map, Value};

use crate::json::{MAX_DEPTH, View};
use crate::value::{Num, Val};

/// Longest accepted expression text.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Operations one evaluation may run (a loop iteration, a call and an operator are one each).
pub const MAX_OPERATIONS: u64 = 200_000;
/// Wall-clock time one evaluation may take.
pub const TIME_LIMIT: Duration = Duration::from_millis(50);
/// Bytes of text, items of arrays and members of maps one value may hold, nested ones
/// included (so a value is at most about 256 KiB of text plus 4096 items and members).
pub const MAX_STRING_BYTES: usize = 256 * 1024;
pub const MAX_ARRAY_ITEMS: usize = 4096;
pub const MAX_MAP_MEMBERS: usize = 4096;
const MAX_CALL_LEVELS: usize = 8;
const MAX_EXPRESSION_DEPTH: usize = 32;
const MAX_FUNCTION_DEPTH: usize = 16;
const MAX_VARIABLES: usize = 64;
const MAX_FUNCTIONS: usize = 16;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    ast: AST,
    uses_record: bool,
    uses_task: bool,
}

impl Expr {
    /// Whether the expression may read `record` (the whole source record).
    pub(crate) fn uses_record(&self) -> bool {
        self.uses_record
    }
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExprFailure {
    /// The expression raised an error or produced something that is not JSON.
    Failed(String),
    /// It hit a limit of time, operations, size or depth.
    Limit(String),
}

struct Sandbox {
    engine: Engine,
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(Sandbox::new)
}

impl Sandbox {
    fn new() -> Sandbox {
        // `new_raw` has no print/debug output and no module resolver.
        let mut engine = Engine::new_raw();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine
            .set_max_operations(MAX_OPERATIONS)
            .set_max_string_size(MAX_STRING_BYTES)
            .set_max_array_size(MAX_ARRAY_ITEMS)
            .set_max_map_size(MAX_MAP_MEMBERS)
            .set_max_call_levels(MAX_CALL_LEVELS)
            .set_max_expr_depths(MAX_EXPRESSION_DEPTH, MAX_FUNCTION_DEPTH)
            .set_max_variables(MAX_VARIABLES)
            .set_max_functions(MAX_FUNCTIONS)
            .set_strict_variables(true);
        // `eval` would compile text at run time; `print`/`debug` write nowhere here, and
        // refusing them tells the author so at once.
        for symbol in ["eval", "print", "debug"] {
            engine.disable_symbol(symbol);
        }
        engine.on_progress(|operations| {
            if operations % 256 != 0 {
                return None;
            }
            let late = DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() > d);
            late.then(|| Dynamic::from("time limit"))
        });
        Sandbox { engine }
    }
}

/// The scope names an expression can use, declared for the compiler's strict-variables check.
fn declared_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push("value", Dynamic::UNIT);
    scope.push("record", Dynamic::UNIT);
    scope.push("task", Dynamic::UNIT);
    scope
}

pub(crate) fn compile(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "is {} bytes long; expressions are limited to {MAX_EXPRESSION_LEN}",
            text.len()
        ));
    }
    let ast = sandbox()
        .engine
        .compile_with_scope(&declared_scope(), text)
        .map_err(|error| format!("does not compile: {error}"))?;
    // A cheap over-approximation: a miss only costs building the map for nothing.
    Ok(Expr {
        ast,
        uses_record: text.contains("record"),
        uses_task: text.contains("task"),
    })
}

/// The values an expression may read besides `value`, built once per record and per batch.
pub(crate) struct Inputs<'a, 'r> {
    pub(crate) record: View<'r>,
    pub(crate) record_map: &'a std::cell::OnceCell<Dynamic>,
    pub(crate) task: &'a Dynamic,
}

pub(crate) fn eval(
    expr: &Expr,
    value: &Val<'_>,
    inputs: &Inputs<'_, '_>,
) -> Result<Val<'static>, ExprFailure> {
    let mut scope = Scope::new();
    scope.push("value", val_to_dynamic(value, 0));
    scope.push(
        "record",
        if expr.uses_record {
            inputs
                .record_map
                .get_or_init(|| view_to_dynamic(inputs.record, 0))
                .clone()
        } else {
            Dynamic::UNIT
        },
    );
    scope.push(
        "task",
        if expr.uses_task {
            inputs.task.clone()
        } else {
            Dynamic::UNIT
        },
    );
    DEADLINE.with(|d| d.set(Some(Instant::now() + TIME_LIMIT)));
    let result = sandbox()
        .engine
        .eval_ast_with_scope::<Dynamic>(&mut scope, &expr.ast);
    DEADLINE.with(|d| d.set(None));
    match result {
        Ok(result) => dynamic_to_json(&result, 0)
            .map(Val::from_json)
            .map_err(ExprFailure::Failed),
        Err(error) => Err(classify(*error)),
    }
}

fn classify(error: EvalAltResult) -> ExprFailure {
    use EvalAltResult as E;
    match error {
        E::ErrorTooManyOperations(..) => {
            ExprFailure::Limit(format!("ran more than {MAX_OPERATIONS} operations"))
        }
        E::ErrorTerminated(..) => {
            ExprFailure::Limit(format!("ran longer than {} ms", TIME_LIMIT.as_millis()))
        }
        E::ErrorDataTooLarge(what, ..) => ExprFailure::Limit(format!("{what} exceeds its limit")),
        E::ErrorStackOverflow(..) => ExprFailure::Limit("calls nested too deeply".into()),
        E::ErrorTooManyVariables(..) => {
            ExprFailure::Limit(format!("uses more than {MAX_VARIABLES} variables"))
        }
        other => ExprFailure::Failed(other.to_string()),
    }
}

/// The sync task's config as the `task` map of expressions.
pub(crate) fn task_dynamic(config: &Map<String, Value>) -> Dynamic {
    let mut map = rhai::Map::new();
    for (key, value) in config {
        map.insert(key.as_str().into(), json_to_dynamic(value, 0));
    }
    Dynamic::from_map(map)
}

fn num_to_dynamic(n: &Num) -> Dynamic {
    match n {
        Num::Int(i) => Dynamic::from_int(*i),
        other => Dynamic::from_float(other.to_f64()),
    }
}

fn val_to_dynamic(value: &Val<'_>, depth: usize) -> Dynamic {
    match value {
        Val::Null => Dynamic::UNIT,
        Val::Bool(b) => Dynamic::from_bool(*b),
        Val::Num(n) => num_to_dynamic(n),
        Val::Str(s) => Dynamic::from(ImmutableString::from(s.as_ref())),
        Val::Date(d) => Dynamic::from(ImmutableString::from(d.to_iso_string())),
        Val::Ref(view) => view_to_dynamic(*view, depth),
        Val::List(items) if depth < MAX_DEPTH => Dynamic::from_array(
            items
                .iter()
                .map(|item| val_to_dynamic(item, depth + 1))
                .collect(),
        ),
        Val::List(_) => Dynamic::UNIT,
        Val::Json(value) => json_to_dynamic(value, depth),
    }
}

fn view_to_dynamic(view: View<'_>, depth: usize) -> Dynamic {
    if let View::Json(value) = view {
        return json_to_dynamic(value, depth);
    }
    match Val::from_view(view) {
        Val::Ref(view) if depth >= MAX_DEPTH => {
            let _ = view;
            Dynamic::UNIT
        }
        Val::Ref(view) => {
            if view.is_object() {
                let mut map = rhai::Map::new();
                for (key, child) in view.children() {
                    map.insert(
                        key.unwrap_or_default().into(),
                        view_to_dynamic(child, depth + 1),
                    );
                }
                Dynamic::from_map(map)
            } else {
                let items: Array = view
                    .children()
                    .map(|(_, child)| view_to_dynamic(child, depth + 1))
                    .collect();
                Dynamic::from_array(items)
            }
        }
        scalar => val_to_dynamic(&scalar, depth),
    }
}

fn json_to_dynamic(value: &Value, depth: usize) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => num_to_dynamic(&Num::from_json(n)),
        Value::String(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Dynamic::UNIT,
        Value::Array(items) => Dynamic::from_array(
            items
                .iter()
                .map(|item| json_to_dynamic(item, depth + 1))
                .collect(),
        ),
        Value::Object(members) => {
            let mut map = rhai::Map::new();
            for (key, member) in members {
                map.insert(key.as_str().into(), json_to_dynamic(member, depth + 1));
            }
            Dynamic::from_map(map)
        }
    }
}

fn dynamic_to_json(value: &Dynamic, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("the result is nested too deeply".into());
    }
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Num::from_f64(f)
            .map(|n| n.to_json())
            .ok_or_else(|| format!("the result {f} is not a finite number"));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if let Ok(s) = value.as_immutable_string_ref() {
        return Ok(Value::String(s.as_str().to_owned()));
    }
    if let Ok(items) = value.as_array_ref() {
        return items
            .iter()
            .map(|item| dynamic_to_json(item, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Ok(members) = value.as_map_ref() {
        let mut map = Map::new();
        for (key, member) in members.iter() {
            map.insert(key.to_string(), dynamic_to_json(member, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    Err(format!(
        "the result is a {}, which has no JSON form",
        value.type_name()
    ))
}

#[cfg(test)]
mod tests {
    use std::cell::OnceCell;

    use serde_json::json;

    use super::*;

    fn run(text: &str, value: Val<'_>, record: &Value) -> Result<Value, ExprFailure> {
        let expr = compile(text).map_err(ExprFailure::Failed)?;
        let cell = OnceCell::new();
        let task = task_dynamic(json!({"region": "emea"}).as_object().unwrap());
        let inputs = Inputs {
            record: View::Json(record),
            record_map: &cell,
            task: &task,
        };
        eval(&expr, &value, &inputs).map(|v| v.to_json())
    }

    #[test]
    fn sees_value_record_and_task() {
        let record = json!({"Amount": 1500, "Stage": "Closed Won", "Address": {"city": "Paris"}});
        assert_eq!(
            run("value * 2", Val::Num(Num::Int(21)), &record),
            Ok(json!(42))
        );
        assert_eq!(
            run(
                "record.Amount > 1000 && record.Stage == \"Closed Won\"",
                Val::Null,
                &record
            ),
            Ok(json!(true))
        );
        assert_eq!(
            run(
                "record.Address.city + \"/\" + task.region",
                Val::Null,
                &record
            ),
            Ok(json!("Paris/emea"))
        );
        assert_eq!(run("record.Missing", Val::Null, &record), Ok(json!(null)));
        assert_eq!(
            run("[value, #{a: 1.5}]", Val::Str("x".into()), &record),
            Ok(json!(["x", {"a": 1.5}]))
        );
    }

    #[test]
    fn unknown_variables_and_syntax_errors_fail_to_compile() {
        assert!(
            compile("vlaue + 1")
                .unwrap_err()
                .contains("does not compile")
        );
        assert!(compile("value +").is_err());
        assert!(compile(&"1+".repeat(3000)).unwrap_err().contains("limited"));
        assert!(compile("eval(\"1\")").is_err());
        assert!(compile("import \"x\" as y; 1").is_err());
    }

    #[test]
    fn runaway_expressions_hit_a_limit() {
        let record = json!({});
        let limit =
            |text: &str| matches!(run(text, Val::Null, &record), Err(ExprFailure::Limit(_)));
        assert!(limit("loop {}"));
        assert!(limit("let s = \"x\"; loop { s += s; }"));
        assert!(limit("let a = []; loop { a.push(1); }"));
        assert!(limit("fn f(x) { f(x + 1) } f(0)"));
        assert!(limit("let a = [1]; loop { a = [a, a]; }"));
    }

    #[test]
    fn runtime_errors_are_reported_not_raised() {
        let record = json!({});
        assert!(matches!(
            run("throw \"bad\"", Val::Null, &record),
            Err(ExprFailure::Failed(_))
        ));
        assert!(matches!(
            run("1 / 0", Val::Null, &record),
            Err(ExprFailure::Failed(_))
        ));
        assert!(matches!(
            run("Fn(\"x\")", Val::Null, &record),
            Err(ExprFailure::Failed(_))
        ));
        assert!(matches!(
            run("1.0 / 0.0", Val::Null, &record),
            Err(ExprFailure::Failed(_))
        ));
    }
}
