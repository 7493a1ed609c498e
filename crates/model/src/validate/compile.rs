//! From a definition document to a [`Process`]: resolve every reference, compile every
//! expression, form and calendar, and report every problem found on the way.
//!
//! The compiler never stops at the first problem: a broken step is reported and left out, and
//! references to it are not reported again. It returns a process only if no error was found.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use calendar::{Calendar, CalendarSpec};
use indexmap::IndexMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::graph;
use super::locate::{Sink, Where};
use crate::diagnostic::{Code, did_you_mean};
use crate::process::*;
use crate::raw::{self, Label, ParameterKind};
use crate::yaml::Path;

/// Names every expression may read besides the data; data variables may not take them.
pub const RESERVED: [&str; 4] = ["now", "params", "done_by", "instance"];

/// What the compiler needs besides the document.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The sandbox expressions are compiled in.
    pub sandbox: &'a Arc<script::Sandbox>,
    /// The actions that exist; `None` skips the check (e.g. when plugins are not loaded).
    pub actions: Option<&'a BTreeSet<String>>,
    /// The processes a subprocess may start; `None` skips the check.
    pub processes: Option<&'a BTreeSet<String>>,
    /// The form names that exist, for "did you mean" hints.
    pub known_forms: Option<&'a BTreeSet<String>>,
}

/// Compiles a definition document. Problems go to `sink`; a process is returned only if there
/// was no error.
pub fn compile(doc: &Value, ctx: &Context<'_>, sink: &mut Sink<'_>) -> Option<Process> {
    let raw: raw::Process = match doc.get("process").cloned().map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            sink.report(Code::Schema, Where::Value(Path::root().key("process")), e.to_string(), None);
            return None;
        }
        None => {
            sink.report(Code::Schema, Where::Value(Path::root()), "the document has no process", None);
            return None;
        }
    };
    let mut c = Compiler::new(doc, &raw, ctx, sink);
    let process = c.run();
    let failed = c.sink.has_errors();
    if failed { None } else { process }
}

struct Compiler<'a, 'b, 'c> {
    doc: &'a Value,
    raw: &'a raw::Process,
    ctx: &'a Context<'a>,
    sink: &'a mut Sink<'b>,
    root: Path,
    catalogue: IndexMap<String, Label>,
    calendars: BTreeMap<String, Arc<Calendar>>,
    forms: BTreeMap<String, Option<Form>>,
    step_ids: BTreeMap<&'a str, StepIdx>,
    vars: script::Vars,
    _marker: std::marker::PhantomData<&'c ()>,
}

impl<'a, 'b, 'c> Compiler<'a, 'b, 'c> {
    fn new(doc: &'a Value, raw: &'a raw::Process, ctx: &'a Context<'a>, sink: &'a mut Sink<'b>) -> Self {
        let catalogue = doc
            .get("roles")
            .cloned()
            .and_then(|v| serde_json::from_value::<IndexMap<String, Label>>(v).ok())
            .unwrap_or_default();
        let step_ids = raw.steps.keys().enumerate().map(|(i, id)| (id.as_str(), StepIdx(i as u32))).collect();
        Compiler {
            doc,
            raw,
            ctx,
            sink,
            root: Path::root().key("process"),
            catalogue,
            calendars: BTreeMap::new(),
            forms: BTreeMap::new(),
            step_ids,
            vars: script::Vars::new(),
            _marker: std::marker::PhantomData,
        }
    }

    fn at(&self, rel: &[&str]) -> Path {
        rel.iter().fold(self.root.clone(), |p, k| p.key(*k))
    }

    fn report(&mut self, code: Code, place: Where, message: impl Into<String>, hint: Option<String>) {
        self.sink.report(code, place, message, hint);
    }

    fn run(&mut self) -> Option<Process> {
        let raw = self.raw;
        self.check_id(&raw.process, self.at(&["process"]), "process");
        self.check_label(&raw.title, self.at(&["title"]));
        if let Some(d) = &raw.description {
            self.check_label(d, self.at(&["description"]));
        }
        self.compile_calendars();
        let default_calendar = match &raw.calendar {
            Some(name) => self.calendar(name, &self.at(&["calendar"])),
            None => Some(Arc::new(Calendar::always_open_utc())),
        };
        let roles = self.compile_roles();
        let params = self.compile_params();
        let data = self.compile_data();
        self.declare_vars(&params, data.as_ref());
        let steps = self.compile_steps();
        super::policy::check(raw, &self.root, self.sink);
        let start = self.step_ref(&raw.start, &self.at(&["start"]));
        let (Some(default_calendar), Some(data), Some(steps), Some(start)) = (default_calendar, data, steps, start)
        else {
            return None;
        };
        let hash = ContentHash(hex::encode(Sha256::digest(self.doc.to_string().as_bytes())));
        let pack = self.doc.get("pack").and_then(|p| {
            Some(PackRef { id: p.get("id")?.as_str()?.to_string(), version: p.get("version")?.as_str()?.to_string() })
        });
        let process = Process {
            id: raw.process.clone(),
            version: raw.version,
            hash,
            document: self.doc.clone(),
            pack,
            title: raw.title.clone(),
            description: raw.description.clone(),
            roles,
            params,
            data,
            vars: self.vars.clone(),
            default_calendar,
            calendars: self.calendars.clone(),
            start,
            steps,
            sandbox: Arc::clone(self.ctx.sandbox),
        };
        graph::check(&process, &self.root, self.sink);
        Some(process)
    }

    // ----- names and labels -------------------------------------------------------------

    fn check_id(&mut self, id: &str, path: Path, what: &str) {
        let ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.report(
                Code::BadId,
                Where::Key(path),
                format!("the {what} id `{id}` is not snake_case"),
                Some("ids use lower-case letters, digits and underscores, and start with a letter".into()),
            );
        }
    }

    fn check_label(&mut self, label: &Label, path: Path) {
        for (lang, text) in [("zh", &label.zh), ("en", &label.en)] {
            if text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                let name = if lang == "zh" { "Chinese" } else { "English" };
                self.report(
                    Code::MissingLabel,
                    Where::Value(path.clone()),
                    format!("the {name} text (`{lang}`) is missing"),
                    Some(format!("add `{lang}:` so that staff reading {name} see this text")),
                );
            }
        }
    }

    // ----- calendars, roles, parameters, data -------------------------------------------

    fn compile_calendars(&mut self) {
        let Some(specs) = self.doc.get("calendars").and_then(Value::as_object) else { return };
        for (name, spec) in specs {
            let path = Path::root().key("calendars").key(name.clone());
            let spec: CalendarSpec = match serde_json::from_value(spec.clone()) {
                Ok(s) => s,
                Err(e) => {
                    self.report(Code::BadCalendar, Where::Value(path), e.to_string(), None);
                    continue;
                }
            };
            match Calendar::parse(&spec) {
                Ok(cal) => {
                    self.calendars.insert(name.clone(), Arc::new(cal));
                }
                Err(errors) => {
                    for e in errors {
                        let p = e.path.iter().fold(path.clone(), |p, k| p.key(k.clone()));
                        self.report(
                            Code::BadCalendar,
                            Where::Value(p),
                            format!("calendar `{name}`: {}", e.message),
                            None,
                        );
                    }
                }
            }
        }
    }

    fn calendar(&mut self, name: &str, path: &Path) -> Option<Arc<Calendar>> {
        if let Some(cal) = self.calendars.get(name) {
            return Some(Arc::clone(cal));
        }
        let known: Vec<String> = self.calendars.keys().cloned().collect();
        let hint = did_you_mean(name, known.iter().map(String::as_str))
            .map(|m| format!("did you mean `{m}`?"))
            .or_else(|| Some(format!("calendars are declared in the pack manifest; known: {}", join_or_none(&known))));
        self.report(Code::BadCalendar, Where::Value(path.clone()), format!("there is no calendar `{name}`"), hint);
        None
    }

    fn compile_roles(&mut self) -> BTreeMap<String, Label> {
        let mut roles = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (i, role) in self.raw.roles.iter().enumerate() {
            let path = self.at(&["roles"]).index(i);
            if !seen.insert(role.as_str()) {
                self.report(Code::DuplicateId, Where::Value(path), format!("the role `{role}` is listed twice"), None);
                continue;
            }
            match self.catalogue.get(role) {
                Some(label) => {
                    roles.insert(role.clone(), label.clone());
                }
                None => {
                    let hint = did_you_mean(role, self.catalogue.keys().map(String::as_str))
                        .map(|m| format!("did you mean `{m}`?"))
                        .or_else(|| Some("add the role to the pack's role catalogue (`roles:` in pack.yaml)".into()));
                    self.report(
                        Code::UnknownRole,
                        Where::Value(path),
                        format!("the role `{role}` is not in the pack's role catalogue"),
                        hint,
                    );
                }
            }
        }
        roles
    }

    fn compile_params(&mut self) -> BTreeMap<String, ParamValue> {
        let mut out = BTreeMap::new();
        for (name, p) in &self.raw.parameters {
            let path = self.at(&["parameters", name]);
            self.check_id(name, path.clone(), "parameter");
            self.check_label(&p.title, path.key("title"));
            if let Some(value) = self.check_param_value(name, p, &p.default, &path.key("default")) {
                out.insert(name.clone(), ParamValue { kind: p.kind, value });
            }
        }
        out
    }

    /// Checks a parameter value against its kind and range; returns it normalised (durations
    /// in canonical ISO 8601). Overlays call the same rules through [`check_parameter_value`].
    fn check_param_value(&mut self, name: &str, p: &raw::Parameter, value: &Value, path: &Path) -> Option<Value> {
        match check_parameter_value(p, value) {
            Ok(v) => Some(v),
            Err(ParamError::Duration(msg)) => {
                self.report(Code::BadDuration, Where::Value(path.clone()), format!("parameter `{name}`: {msg}"), None);
                None
            }
            Err(ParamError::Other(msg)) => {
                self.report(Code::BadParameter, Where::Value(path.clone()), format!("parameter `{name}`: {msg}"), None);
                None
            }
        }
    }

    fn compile_data(&mut self) -> Option<DataSchema> {
        let path = self.at(&["data"]);
        let schema = self.raw.data.clone();
        let validator = self.compile_schema(&schema, &path, "the instance data")?;
        Some(DataSchema { schema, validator })
    }

    /// Compiles a JSON Schema that must describe an object.
    fn compile_schema(&mut self, schema: &Value, path: &Path, what: &str) -> Option<Arc<jsonschema::Validator>> {
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            self.report(
                Code::BadSchema,
                Where::Value(path.clone()),
                format!("{what} must be a JSON Schema with `type: object`"),
                None,
            );
            return None;
        }
        // Only the bundled drafts are accepted: a schema naming another meta-schema would make
        // the validator look for it, and forms never need one.
        const DRAFTS: [&str; 3] = [
            "https://json-schema.org/draft/2020-12/schema",
            "https://json-schema.org/draft/2019-09/schema",
            "http://json-schema.org/draft-07/schema#",
        ];
        if let Some(declared) = schema.get("$schema")
            && !declared.as_str().is_some_and(|d| DRAFTS.contains(&d))
        {
            self.report(
                Code::BadSchema,
                Where::Value(path.key("$schema")),
                format!("{what} names the meta-schema {declared}, which is not supported"),
                Some(format!("remove `$schema` or use {}", DRAFTS[0])),
            );
            return None;
        }
        let meta = match jsonschema::meta::validator_for(schema) {
            Ok(m) => m,
            Err(e) => {
                self.report(
                    Code::BadSchema,
                    Where::Value(path.clone()),
                    format!("{what} cannot be checked: {e}"),
                    None,
                );
                return None;
            }
        };
        let mut ok = true;
        for error in meta.iter_errors(schema) {
            ok = false;
            let at = Path::from_pointer(error.instance_path().as_str());
            let full = at.segments().iter().fold(path.clone(), |p, s| match s {
                crate::yaml::Seg::Key(k) => p.key(k.clone()),
                crate::yaml::Seg::Index(i) => p.index(*i),
            });
            self.report(
                Code::BadSchema,
                Where::Value(full),
                format!("{what} is not a valid JSON Schema: {error}"),
                None,
            );
        }
        if !ok {
            return None;
        }
        match jsonschema::options().should_validate_formats(true).build(schema) {
            Ok(v) => Some(Arc::new(v)),
            Err(e) => {
                self.report(Code::BadSchema, Where::Value(path.clone()), format!("{what} cannot be used: {e}"), None);
                None
            }
        }
    }

    // ----- variables --------------------------------------------------------------------

    fn declare_vars(&mut self, params: &BTreeMap<String, ParamValue>, data: Option<&DataSchema>) {
        let mut vars = script::Vars::new();
        let param_fields = params
            .iter()
            .map(|(k, v)| {
                let shape = match v.kind {
                    ParameterKind::Integer => script::Shape::Int,
                    ParameterKind::Number => script::Shape::Number,
                    ParameterKind::Boolean => script::Shape::Bool,
                    ParameterKind::String => script::Shape::String,
                    ParameterKind::Duration => script::Shape::Duration,
                };
                (k.clone(), shape)
            })
            .collect();
        vars.insert("params", script::Shape::Object { fields: param_fields, open: false });
        vars.insert("done_by", script::Shape::Object { fields: BTreeMap::new(), open: true });
        let instance_fields = [
            ("id", script::Shape::String),
            ("business_key", script::Shape::String),
            ("process", script::Shape::String),
            ("started_at", script::Shape::Timestamp),
            ("dealer", script::Shape::String),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), s))
        .collect();
        vars.insert("instance", script::Shape::Object { fields: instance_fields, open: false });

        // Step outputs: a task's form, a timer's side-task form, anything else open.
        let mut outputs: Vec<(String, Path, script::Shape)> = Vec::new();
        for (id, step) in &self.raw.steps {
            let path = self.at(&["steps", id]);
            let shape = match step {
                raw::Step::Task(t) => Some(self.form_shape(t.form.as_ref(), &path.key("form"))),
                raw::Step::Action(_) | raw::Step::Receive(_) | raw::Step::Subprocess(_) => Some(script::Shape::Any),
                _ => None,
            };
            if let Some(shape) = shape {
                outputs.push((id.clone(), path.clone(), shape));
            }
            for (i, timer) in step_timers(step).iter().enumerate() {
                if let Some(task) = &timer.open_task {
                    let tpath = path.key("timers").index(i);
                    let shape = self.form_shape(task.form.as_ref(), &tpath.key("open_task").key("form"));
                    outputs.push((timer.id.clone(), tpath.key("id"), shape));
                }
            }
        }
        for (name, path, shape) in outputs {
            // A name the expression language keeps for itself (`call`, `loop`, `fn`, ...) could
            // never be read by a guard; say so at the step instead of at every guard.
            if self
                .ctx
                .sandbox
                .compile(&name, &script::Vars::new())
                .is_err_and(|e| e.kind == script::CompileErrorKind::Syntax)
            {
                self.report(
                    Code::NameClash,
                    Where::Key(path),
                    format!("`{name}` is a reserved word of the expression language, so guards cannot read this step's output"),
                    Some(format!("rename it, e.g. `{name}_step`")),
                );
            }
            vars.insert(name, shape);
        }

        if let Some(props) = data.and_then(|d| d.schema.get("properties")).and_then(Value::as_object) {
            for (name, schema) in props {
                let path = self.at(&["data", "properties", name]);
                if RESERVED.contains(&name.as_str()) {
                    self.report(
                        Code::NameClash,
                        Where::Key(path),
                        format!("`{name}` is a reserved name and cannot be a data variable"),
                        Some(format!("reserved names: {}", RESERVED.join(", "))),
                    );
                    continue;
                }
                if vars.get(name).is_some() {
                    self.report(
                        Code::NameClash,
                        Where::Key(path),
                        format!("the data variable `{name}` has the same name as a step or timer, whose output is stored under that name"),
                        Some("rename the variable or the step".into()),
                    );
                    continue;
                }
                vars.insert(name.clone(), script::Shape::from_json_schema(schema));
            }
        }
        self.vars = vars;
    }

    fn form_shape(&mut self, form: Option<&raw::FormRef>, path: &Path) -> script::Shape {
        match self.form(form, path) {
            Some(f) => script::Shape::from_json_schema(&f.schema),
            None => script::Shape::Object { fields: BTreeMap::new(), open: form.is_some() },
        }
    }

    fn form(&mut self, form: Option<&raw::FormRef>, path: &Path) -> Option<Form> {
        match form? {
            raw::FormRef::Named(name) => {
                if let Some(cached) = self.forms.get(name) {
                    return cached.clone();
                }
                let compiled = match self.doc.get("forms").and_then(|f| f.get(name)) {
                    Some(schema) => {
                        let schema = close_form(schema.clone());
                        let form_path = Path::root().key("forms").key(name.clone());
                        self.compile_schema(&schema, &form_path, &format!("the form `{name}`")).map(|validator| Form {
                            name: Some(name.clone()),
                            schema,
                            validator,
                        })
                    }
                    None => {
                        let known: Vec<String> =
                            self.ctx.known_forms.map(|k| k.iter().cloned().collect()).unwrap_or_default();
                        let hint = did_you_mean(name, known.iter().map(String::as_str))
                            .map(|m| format!("did you mean `{m}`?"))
                            .or_else(|| Some(format!("forms are JSON Schema files `schemas/forms/<name>.json`; `{name}.json` was not found")));
                        self.report(
                            Code::UnknownForm,
                            Where::Value(path.clone()),
                            format!("there is no form `{name}`"),
                            hint,
                        );
                        None
                    }
                };
                self.forms.insert(name.clone(), compiled.clone());
                compiled
            }
            raw::FormRef::Inline(map) => {
                let schema = close_form(Value::Object(map.clone().into_iter().collect()));
                self.compile_schema(&schema, path, "the inline form").map(|validator| Form {
                    name: None,
                    schema,
                    validator,
                })
            }
        }
    }

    // ----- steps ------------------------------------------------------------------------

    fn compile_steps(&mut self) -> Option<Vec<Step>> {
        let mut steps = Vec::with_capacity(self.raw.steps.len());
        let mut timer_ids: BTreeMap<String, Path> = BTreeMap::new();
        let mut ok = true;
        for (id, step) in &self.raw.steps {
            let path = self.at(&["steps", id]);
            self.check_id(id, path.clone(), "step");
            for (i, t) in step_timers(step).iter().enumerate() {
                let tpath = path.key("timers").index(i).key("id");
                self.check_id(&t.id, tpath.clone(), "timer");
                if timer_ids.insert(t.id.clone(), tpath.clone()).is_some() || self.raw.steps.contains_key(&t.id) {
                    self.report(
                        Code::DuplicateId,
                        Where::Value(tpath),
                        format!("the timer id `{}` is already used by another timer or step", t.id),
                        Some(
                            "timer ids are unique in the process: a side task's form is stored under its timer's id"
                                .into(),
                        ),
                    );
                }
            }
            match self.compile_step(id, step, &path) {
                Some(kind) => {
                    let (title, source) = step_title_source(step);
                    // A task's title was checked with the task itself.
                    if let (Some(t), false) = (&title, matches!(step, raw::Step::Task(_))) {
                        self.check_label(t, path.key("title"));
                    }
                    steps.push(Step { id: id.clone(), title: title.unwrap_or_default(), source, kind });
                }
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    fn compile_step(&mut self, id: &str, step: &raw::Step, path: &Path) -> Option<StepKind> {
        let kind = match step {
            raw::Step::Task(t) => {
                let task = self.task_def(
                    &t.title,
                    t.description.as_ref(),
                    &t.roles,
                    t.assignee.as_deref(),
                    t.form.as_ref(),
                    t.priority.as_deref(),
                    t.due.as_ref(),
                    path,
                );
                let timers = self.timers(&t.timers, path, t.due.is_some());
                let set = self.assignments(&t.set, &path.key("set"), true);
                let next = self.step_ref(&t.next, &path.key("next"));
                StepKind::Task { task: task?, timers: timers?, set: set?, next: next? }
            }
            raw::Step::Action(a) => {
                self.check_action(&a.action, &path.key("action"));
                let input = self.assignments(&a.input, &path.key("input"), false);
                let retry = self.retry(a.retry.as_ref(), &path.key("retry"));
                let on_failure = a.on_failure.as_ref().map(|s| self.step_ref(s, &path.key("on_failure")));
                let timers = self.timers(&a.timers, path, false);
                let set = self.assignments(&a.set, &path.key("set"), true);
                let next = self.step_ref(&a.next, &path.key("next"));
                StepKind::Action {
                    action: a.action.clone(),
                    input: input?,
                    retry: retry?,
                    on_failure: on_failure.map_or(Some(None), |o| o.map(Some))?,
                    timers: timers?,
                    set: set?,
                    next: next?,
                }
            }
            raw::Step::Decision(d) => {
                if d.branches.is_empty() {
                    self.report(
                        Code::Schema,
                        Where::Value(path.key("branches")),
                        "a decision needs at least one branch",
                        None,
                    );
                }
                let mut branches = Vec::new();
                let mut ok = true;
                for (i, b) in d.branches.iter().enumerate() {
                    let bpath = path.key("branches").index(i);
                    let guard = self.guard(&b.when, &bpath.key("when"));
                    let next = self.step_ref(&b.next, &bpath.key("next"));
                    if let Some(l) = &b.label {
                        self.check_label(l, bpath.key("label"));
                    }
                    match (guard, next) {
                        (Some(guard), Some(next)) => branches.push(BranchDef { guard, next, label: b.label.clone() }),
                        _ => ok = false,
                    }
                }
                let default = self.step_ref(&d.default, &path.key("default"));
                if !ok || d.branches.is_empty() {
                    return None;
                }
                StepKind::Decision { branches, default: default? }
            }
            raw::Step::Parallel(p) => {
                if p.branches.len() < 2 {
                    self.report(
                        Code::JoinMismatch,
                        Where::Value(path.key("branches")),
                        "a parallel step needs at least two branches",
                        None,
                    );
                }
                let branches: Vec<Option<StepIdx>> = p
                    .branches
                    .iter()
                    .enumerate()
                    .map(|(i, b)| self.step_ref(b, &path.key("branches").index(i)))
                    .collect();
                let join = self.join_of(id, path);
                if p.branches.len() < 2 {
                    return None;
                }
                StepKind::Parallel { branches: branches.into_iter().collect::<Option<Vec<_>>>()?, join: join? }
            }
            raw::Step::Join(j) => {
                let of = self.step_ref(&j.of, &path.key("of"));
                if let Some(of_idx) = of
                    && !matches!(self.raw.steps.get_index(of_idx.get()), Some((_, raw::Step::Parallel(_))))
                {
                    self.report(
                        Code::JoinMismatch,
                        Where::Value(path.key("of")),
                        format!("`{}` is not a parallel step; a join waits for the branches of a parallel step", j.of),
                        None,
                    );
                }
                let n_branches = match self.raw.steps.get(&j.of) {
                    Some(raw::Step::Parallel(p)) => p.branches.len(),
                    _ => 0,
                };
                let wait_for = match &j.wait_for {
                    None => Some(None),
                    Some(raw::WaitFor::Keyword(k)) if k == "all" => Some(None),
                    Some(raw::WaitFor::Count(n)) if *n >= 1 && (n_branches == 0 || (*n as usize) <= n_branches) => {
                        Some(Some(*n))
                    }
                    Some(other) => {
                        let shown = match other {
                            raw::WaitFor::Count(n) => n.to_string(),
                            raw::WaitFor::Keyword(k) => k.clone(),
                        };
                        self.report(
                            Code::JoinMismatch,
                            Where::Value(path.key("wait_for")),
                            format!("`wait_for: {shown}` does not fit a split of {n_branches} branches"),
                            Some("write `all`, or a number from 1 to the number of branches".into()),
                        );
                        None
                    }
                };
                let abort_when = j.abort_when.as_ref().map(|g| self.guard(g, &path.key("abort_when")));
                let on_abort = j.on_abort.as_ref().map(|s| self.step_ref(s, &path.key("on_abort")));
                if j.abort_when.is_some() != j.on_abort.is_some() {
                    self.report(
                        Code::JoinMismatch,
                        Where::Value(path.clone()),
                        "`abort_when` and `on_abort` go together: one says when to stop early, the other where to go",
                        None,
                    );
                    return None;
                }
                let set = self.assignments(&j.set, &path.key("set"), true);
                let next = self.step_ref(&j.next, &path.key("next"));
                StepKind::Join {
                    of: of?,
                    wait_for: wait_for?,
                    abort_when: abort_when.map_or(Some(None), |o| o.map(Some))?,
                    on_abort: on_abort.map_or(Some(None), |o| o.map(Some))?,
                    set: set?,
                    next: next?,
                }
            }
            raw::Step::Wait(w) => {
                let until = self.moment(w.after.as_deref(), w.at.as_deref(), w.calendar.as_deref(), path, false);
                let set = self.assignments(&w.set, &path.key("set"), true);
                let next = self.step_ref(&w.next, &path.key("next"));
                StepKind::Wait { until: until?, set: set?, next: next? }
            }
            raw::Step::Receive(r) => {
                self.check_id(&r.message, path.key("message"), "message");
                let key = r.key.as_ref().map(|k| self.value_expr(k, &path.key("key")));
                let timers = self.timers(&r.timers, path, false);
                let set = self.assignments(&r.set, &path.key("set"), true);
                let next = self.step_ref(&r.next, &path.key("next"));
                StepKind::Receive {
                    message: r.message.clone(),
                    key: key.map_or(Some(None), |o| o.map(Some))?,
                    timers: timers?,
                    set: set?,
                    next: next?,
                }
            }
            raw::Step::Send(s) => {
                self.check_id(&s.message, path.key("message"), "message");
                let key = s.key.as_ref().map(|k| self.value_expr(k, &path.key("key")));
                let payload = self.assignments(&s.payload, &path.key("payload"), false);
                let next = self.step_ref(&s.next, &path.key("next"));
                StepKind::Send {
                    message: s.message.clone(),
                    key: key.map_or(Some(None), |o| o.map(Some))?,
                    payload: payload?,
                    next: next?,
                }
            }
            raw::Step::Subprocess(s) => {
                if let Some(known) = self.ctx.processes
                    && !known.contains(&s.process)
                {
                    let hint = did_you_mean(&s.process, known.iter().map(String::as_str))
                        .map(|m| format!("did you mean `{m}`?"));
                    self.report(
                        Code::UnknownProcess,
                        Where::Value(path.key("process")),
                        format!("there is no process `{}` in the pack", s.process),
                        hint,
                    );
                }
                let input = self.assignments(&s.input, &path.key("input"), false);
                let business_key = s.business_key.as_ref().map(|k| self.value_expr(k, &path.key("business_key")));
                let timers = self.timers(&s.timers, path, false);
                let set = self.assignments(&s.set, &path.key("set"), true);
                let next = self.step_ref(&s.next, &path.key("next"));
                StepKind::Subprocess {
                    process: s.process.clone(),
                    input: input?,
                    business_key: business_key.map_or(Some(None), |o| o.map(Some))?,
                    wait: s.wait.unwrap_or(true),
                    timers: timers?,
                    set: set?,
                    next: next?,
                }
            }
            raw::Step::End(e) => {
                let outcome = e.outcome.clone().unwrap_or_else(|| "completed".into());
                self.check_id(&outcome, path.key("outcome"), "outcome");
                let result = self.assignments(&e.result, &path.key("result"), false);
                StepKind::End { outcome, result: result? }
            }
        };
        Some(kind)
    }

    fn join_of(&mut self, parallel_id: &str, path: &Path) -> Option<StepIdx> {
        let joins: Vec<StepIdx> = self
            .raw
            .steps
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| matches!(s, raw::Step::Join(j) if j.of == parallel_id))
            .map(|(i, _)| StepIdx(i as u32))
            .collect();
        match joins.as_slice() {
            [one] => Some(*one),
            [] => {
                self.report(
                    Code::JoinMismatch,
                    Where::Key(path.clone()),
                    format!("no join step has `of: {parallel_id}`: the branches of this parallel step are never brought together"),
                    Some("add a step with `type: join` and `of:` naming this step".into()),
                );
                None
            }
            _ => {
                self.report(
                    Code::JoinMismatch,
                    Where::Key(path.clone()),
                    format!("several join steps have `of: {parallel_id}`; a parallel step has exactly one join"),
                    None,
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn task_def(
        &mut self,
        title: &Label,
        description: Option<&Label>,
        roles: &[String],
        assignee: Option<&str>,
        form: Option<&raw::FormRef>,
        priority: Option<&str>,
        due: Option<&raw::When>,
        path: &Path,
    ) -> Option<TaskDef> {
        self.check_label(title, path.key("title"));
        if let Some(d) = description {
            self.check_label(d, path.key("description"));
        }
        let mut ok = true;
        if roles.is_empty() {
            self.report(
                Code::Schema,
                Where::Value(path.key("roles")),
                "a task needs at least one candidate role",
                None,
            );
            ok = false;
        }
        for (i, role) in roles.iter().enumerate() {
            ok &= self.role_ref(role, &path.key("roles").index(i));
        }
        let assignee = assignee.map(|a| self.value_expr(a, &path.key("assignee")));
        let form_def = if form.is_some() {
            let f = self.form(form, &path.key("form"));
            if f.is_none() {
                ok = false;
            }
            f
        } else {
            None
        };
        let priority = self.priority(priority, &path.key("priority"));
        let due = due.map(|d| self.when(d, &path.key("due")));
        if !ok {
            return None;
        }
        Some(TaskDef {
            title: title.clone(),
            description: description.cloned(),
            roles: roles.to_vec(),
            assignee: assignee.map_or(Some(None), |o| o.map(Some))?,
            form: form_def,
            priority: priority?,
            due: due.map_or(Some(None), |o| o.map(Some))?,
        })
    }

    fn role_ref(&mut self, role: &str, path: &Path) -> bool {
        if self.raw.roles.iter().any(|r| r == role) {
            return true;
        }
        let hint = did_you_mean(role, self.raw.roles.iter().map(String::as_str))
            .map(|m| format!("did you mean `{m}`?"))
            .or_else(|| Some(format!("the process declares the roles: {}", join_or_none(&self.raw.roles))));
        self.report(
            Code::UnknownRole,
            Where::Value(path.clone()),
            format!("the process does not declare the role `{role}`"),
            hint,
        );
        false
    }

    fn priority(&mut self, priority: Option<&str>, path: &Path) -> Option<PriorityRule> {
        match priority {
            None => Some(PriorityRule::Fixed(Priority::Normal)),
            Some(p) if p.starts_with('=') => self.value_expr(p, path).map(PriorityRule::Expr),
            Some(p) => match Priority::parse(p) {
                Some(p) => Some(PriorityRule::Fixed(p)),
                None => {
                    let words = ["low", "normal", "high", "urgent"];
                    let hint = did_you_mean(p, words).map(|m| format!("did you mean `{m}`?"));
                    self.report(
                        Code::BadLiteral,
                        Where::Value(path.clone()),
                        format!("`{p}` is not a priority; write low, normal, high or urgent"),
                        hint,
                    );
                    None
                }
            },
        }
    }

    fn check_action(&mut self, action: &str, path: &Path) {
        let Some(known) = self.ctx.actions else { return };
        if known.contains(action) {
            return;
        }
        let hint = did_you_mean(action, known.iter().map(String::as_str))
            .map(|m| format!("did you mean `{m}`?"))
            .or_else(|| Some(format!("known actions: {}", join_or_none(&known.iter().cloned().collect::<Vec<_>>()))));
        self.report(Code::UnknownAction, Where::Value(path.clone()), format!("there is no action `{action}`"), hint);
    }

    fn retry(&mut self, retry: Option<&raw::Retry>, path: &Path) -> Option<RetryPolicy> {
        let mut policy = RetryPolicy::default();
        let Some(r) = retry else { return Some(policy) };
        let mut ok = true;
        if let Some(n) = r.max_attempts {
            if (1..=20).contains(&n) {
                policy.max_attempts = n;
            } else {
                self.report(
                    Code::Schema,
                    Where::Value(path.key("max_attempts")),
                    "`max_attempts` is between 1 and 20",
                    None,
                );
                ok = false;
            }
        }
        if let Some(b) = &r.backoff {
            match self.duration(b, &path.key("backoff")) {
                Some(d) => policy.backoff = d,
                None => ok = false,
            }
        }
        if let Some(b) = &r.max_backoff {
            match self.duration(b, &path.key("max_backoff")) {
                Some(d) => policy.max_backoff = d,
                None => ok = false,
            }
        }
        ok.then_some(policy)
    }

    fn timers(&mut self, timers: &[raw::Timer], step_path: &Path, has_due: bool) -> Option<Vec<TimerDef>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, t) in timers.iter().enumerate() {
            match self.timer(t, &step_path.key("timers").index(i), has_due) {
                Some(def) => out.push(def),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn timer(&mut self, t: &raw::Timer, path: &Path, has_due: bool) -> Option<TimerDef> {
        if let Some(title) = &t.title {
            self.check_label(title, path.key("title"));
        }
        let mut ok = true;
        let first = if t.after.is_none() && t.at.is_none() {
            match &t.every {
                // A recurring timer without a start fires first after one period.
                Some(every) => self.moment(Some(every), None, t.calendar.as_deref(), path, false),
                None => {
                    self.report(
                        Code::BadTimer,
                        Where::Value(path.clone()),
                        format!("the timer `{}` says neither when to fire (`after`, `at` or `every`)", t.id),
                        None,
                    );
                    None
                }
            }
        } else {
            if t.at.as_deref() == Some("due") && !has_due {
                self.report(
                    Code::BadTimer,
                    Where::Value(path.key("at")),
                    format!("the timer `{}` fires `at: due`, but the step has no `due`", t.id),
                    None,
                );
                ok = false;
            }
            self.moment(t.after.as_deref(), t.at.as_deref(), t.calendar.as_deref(), path, true)
        };
        let every = match &t.every {
            Some(e) => {
                let d = self.duration(e, &path.key("every"));
                let cal = match &t.calendar {
                    Some(c) => self.calendar(c, &path.key("calendar")).map(Some),
                    None => Some(None),
                };
                match (d, cal) {
                    (Some(d), Some(cal)) if d.is_positive() => Some(Some((d, cal))),
                    (Some(_), Some(_)) => {
                        self.report(
                            Code::BadDuration,
                            Where::Value(path.key("every")),
                            "a recurring timer's period must be longer than zero",
                            None,
                        );
                        None
                    }
                    _ => None,
                }
            }
            None => Some(None),
        };
        if t.max_times.is_some() && t.every.is_none() {
            self.report(
                Code::BadTimer,
                Where::Value(path.key("max_times")),
                "`max_times` only applies to a recurring timer (`every`)",
                None,
            );
            ok = false;
        }
        let when = t.when.as_ref().map(|g| self.guard(g, &path.key("when")));
        let notify = t.notify.as_ref().map(|n| self.assignments(n, &path.key("notify"), false));
        if t.notify.is_some() {
            self.check_action("notify", &path.key("notify"));
        }
        let invoke = t.invoke.as_ref().map(|inv| {
            self.check_action(&inv.action, &path.key("invoke").key("action"));
            self.assignments(&inv.input, &path.key("invoke").key("input"), false).map(|i| (inv.action.clone(), i))
        });
        let escalate = t.escalate.as_ref().map(|e| self.escalate(e, &path.key("escalate")));
        let open_task = t.open_task.as_ref().map(|s| {
            let tpath = path.key("open_task");
            let def = self.task_def(
                &s.title,
                s.description.as_ref(),
                &s.roles,
                s.assignee.as_deref(),
                s.form.as_ref(),
                s.priority.as_deref(),
                s.due.as_ref(),
                &tpath,
            );
            let set = self.assignments(&s.set, &tpath.key("set"), true);
            match (def, set) {
                (Some(d), Some(s)) => Some((d, s)),
                _ => None,
            }
        });
        let set = self.assignments(&t.set, &path.key("set"), true);
        let goto = t.goto.as_ref().map(|g| self.step_ref(g, &path.key("goto")));
        let does_something = t.notify.is_some()
            || t.invoke.is_some()
            || t.escalate.is_some()
            || t.open_task.is_some()
            || !t.set.is_empty()
            || t.goto.is_some();
        if !does_something {
            self.report(
                Code::BadTimer,
                Where::Value(path.clone()),
                format!("the timer `{}` does nothing when it fires", t.id),
                Some("give it `notify`, `invoke`, `escalate`, `open_task`, `set` or `goto`".into()),
            );
            ok = false;
        }
        if t.goto.is_some() && t.every.is_some() {
            self.report(
                Code::BadTimer,
                Where::Value(path.key("goto")),
                "a recurring timer cannot `goto`: the first firing would leave the step",
                None,
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(TimerDef {
            id: t.id.clone(),
            title: t.title.clone(),
            first: first?,
            every: every?,
            max_times: t.max_times,
            when: when.map_or(Some(None), |o| o.map(Some))?,
            notify: notify.map_or(Some(None), |o| o.map(Some))?,
            invoke: invoke.map_or(Some(None), |o| o.map(Some))?,
            escalate: escalate.map_or(Some(None), |o| o.map(Some))?,
            open_task: open_task.map_or(Some(None), |o| o.map(Some))?,
            set: set?,
            goto: goto.map_or(Some(None), |o| o.map(Some))?,
        })
    }

    fn escalate(&mut self, e: &raw::Escalate, path: &Path) -> Option<EscalateDef> {
        let mut ok = true;
        for (i, role) in e.add_roles.iter().enumerate() {
            ok &= self.role_ref(role, &path.key("add_roles").index(i));
        }
        let assignee = match e.assignee.as_deref() {
            None => Some(None),
            Some("nobody") => Some(Some(AssigneeRule::Nobody)),
            Some(a) => self.value_expr(a, &path.key("assignee")).map(|x| Some(AssigneeRule::Expr(x))),
        };
        let priority = match e.priority.as_deref() {
            None => Some(None),
            Some(p) => match self.priority(Some(p), &path.key("priority")) {
                Some(PriorityRule::Fixed(p)) => Some(Some(p)),
                Some(PriorityRule::Expr(_)) => {
                    self.report(
                        Code::BadLiteral,
                        Where::Value(path.key("priority")),
                        "an escalation's priority is a fixed word",
                        None,
                    );
                    None
                }
                None => None,
            },
        };
        if !ok {
            return None;
        }
        Some(EscalateDef { add_roles: e.add_roles.clone(), assignee: assignee?, priority: priority? })
    }

    fn when(&mut self, when: &raw::When, path: &Path) -> Option<Moment> {
        match when {
            raw::When::Short(s) if s.starts_with('=') => self.moment(None, Some(s), None, path, true),
            raw::When::Short(s) => self.moment(Some(s), None, None, path, true),
            raw::When::Spec(spec) => {
                self.moment(spec.after.as_deref(), spec.at.as_deref(), spec.calendar.as_deref(), path, false)
            }
        }
    }

    /// A moment from `after`/`at`/`calendar`. `short` means the value stands at `path` itself
    /// rather than under `after`/`at` keys.
    fn moment(
        &mut self,
        after: Option<&str>,
        at: Option<&str>,
        calendar: Option<&str>,
        path: &Path,
        short: bool,
    ) -> Option<Moment> {
        let calendar = match calendar {
            Some(c) => Some(self.calendar(c, &path.key("calendar"))?),
            None => None,
        };
        let sub = |k: &str| if short { path.clone() } else { path.key(k) };
        match (after, at) {
            (Some(_), Some(_)) => {
                self.report(Code::BadTimer, Where::Value(path.clone()), "give either `after` or `at`, not both", None);
                None
            }
            (Some(a), None) => {
                let duration = if a.starts_with('=') {
                    DurationRule::Expr(self.value_expr(a, &sub("after"))?)
                } else {
                    DurationRule::Fixed(self.duration(a, &sub("after"))?)
                };
                Some(Moment::After { duration, calendar })
            }
            (None, Some("due")) => Some(Moment::AtDue),
            (None, Some(at)) => {
                if !at.starts_with('=') {
                    self.report(
                        Code::BadTimer,
                        Where::Value(sub("at")),
                        format!("`at: {at}` is neither an expression (starting with `=`) nor `due`"),
                        Some("for a fixed delay use `after:` with a duration such as PT15M".into()),
                    );
                    return None;
                }
                Some(Moment::At { expr: self.value_expr(at, &sub("at"))?, calendar })
            }
            // A calendar alone means "until it is open" (a wait for calling hours).
            (None, None) if calendar.is_some() => {
                Some(Moment::After { duration: DurationRule::Fixed(jiff::SignedDuration::ZERO), calendar })
            }
            (None, None) => {
                self.report(
                    Code::BadTimer,
                    Where::Value(path.clone()),
                    "say when: `after` (a duration), `at` (an expression) or, for a wait, a `calendar` to wait for",
                    None,
                );
                None
            }
        }
    }

    fn duration(&mut self, text: &str, path: &Path) -> Option<jiff::SignedDuration> {
        match calendar::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.report(Code::BadDuration, Where::Value(path.clone()), e.to_string(), None);
                None
            }
        }
    }

    fn step_ref(&mut self, id: &str, path: &Path) -> Option<StepIdx> {
        if let Some(idx) = self.step_ids.get(id) {
            return Some(*idx);
        }
        let hint = did_you_mean(id, self.step_ids.keys().copied()).map(|m| format!("did you mean `{m}`?"));
        self.report(Code::UnknownStep, Where::Value(path.clone()), format!("there is no step `{id}`"), hint);
        None
    }

    // ----- expressions ------------------------------------------------------------------

    /// Output mappings (`targets_data`: names must be declared data variables) and inputs.
    fn assignments(&mut self, map: &IndexMap<String, Value>, path: &Path, targets_data: bool) -> Option<Vec<Assign>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (name, value) in map {
            let vpath = path.key(name.clone());
            if targets_data && !self.is_data_var(name) {
                let data_vars = self.data_var_names();
                let hint = did_you_mean(name, data_vars.iter().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
                    .or_else(|| Some(format!("declare `{name}` under `data.properties` first")));
                self.report(
                    Code::BadSetTarget,
                    Where::Key(vpath),
                    format!("`{name}` is not a variable of the instance data"),
                    hint,
                );
                ok = false;
                continue;
            }
            match self.value_rule(value, &vpath) {
                Some(v) => out.push(Assign { name: name.clone(), value: v }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn data_var_names(&self) -> Vec<String> {
        self.raw
            .data
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn is_data_var(&self, name: &str) -> bool {
        self.raw.data.get("properties").and_then(|p| p.get(name)).is_some() && !RESERVED.contains(&name)
    }

    fn value_rule(&mut self, value: &Value, path: &Path) -> Option<ValueRule> {
        match value {
            Value::String(s) if s.starts_with('=') => self.value_expr(s, path).map(ValueRule::Expr),
            Value::Array(_) | Value::Object(_) => {
                let mut exprs = Vec::new();
                let mut ok = true;
                self.nested_exprs(value, path, "", &mut exprs, &mut ok);
                match (ok, exprs.is_empty()) {
                    (false, _) => None,
                    (true, true) => Some(ValueRule::Literal(value.clone())),
                    (true, false) => Some(ValueRule::Nested(value.clone(), exprs)),
                }
            }
            other => Some(ValueRule::Literal(other.clone())),
        }
    }

    /// Collects the expressions inside a list or record, with the JSON pointer of each.
    fn nested_exprs(
        &mut self,
        value: &Value,
        path: &Path,
        pointer: &str,
        out: &mut Vec<(String, script::Expr)>,
        ok: &mut bool,
    ) {
        match value {
            Value::String(s) if s.starts_with('=') && !pointer.is_empty() => match self.value_expr(s, path) {
                Some(e) => out.push((pointer.to_string(), e)),
                None => *ok = false,
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.nested_exprs(item, &path.index(i), &format!("{pointer}/{i}"), out, ok);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let escaped = k.replace('~', "~0").replace('/', "~1");
                    self.nested_exprs(v, &path.key(k.clone()), &format!("{pointer}/{escaped}"), out, ok);
                }
            }
            _ => {}
        }
    }

    /// An expression written as `=...`, or (for fields that only take expressions, such as
    /// `assignee` and `key`) also without the `=`.
    fn value_expr(&mut self, text: &str, path: &Path) -> Option<script::Expr> {
        match text.strip_prefix('=') {
            Some(src) => self.compile_expr(src, path, 1),
            None => self.compile_expr(text, path, 0),
        }
    }

    /// A guard: the whole text is the script.
    fn guard(&mut self, text: &str, path: &Path) -> Option<script::Expr> {
        self.compile_expr(text, path, 0)
    }

    fn compile_expr(&mut self, src: &str, path: &Path, col_shift: u32) -> Option<script::Expr> {
        match self.ctx.sandbox.compile(src, &self.vars) {
            Ok(e) => Some(e),
            Err(e) => {
                let col = if e.line <= 1 { e.col + col_shift } else { e.col };
                let place = Where::Inside(path.clone(), e.line.max(1), col.max(1));
                let (code, hint) = match &e.kind {
                    script::CompileErrorKind::UndeclaredVariable { name } => {
                        let names: Vec<String> = self.vars.names().map(str::to_string).collect();
                        let hint = did_you_mean(name, names.iter().map(String::as_str))
                            .map(|m| format!("did you mean `{m}`?"))
                            .or_else(|| Some("expressions read data variables, step outputs (by step id), `params`, `done_by`, `instance` and `now`".into()));
                        (Code::UndeclaredVariable, hint)
                    }
                    script::CompileErrorKind::UnknownField { path: field_path, known } => {
                        let code = if field_path.starts_with("params.") {
                            Code::UnknownParameter
                        } else {
                            Code::UndeclaredVariable
                        };
                        let last = field_path.rsplit('.').next().unwrap_or(field_path);
                        let hint = did_you_mean(last, known.iter().map(String::as_str))
                            .map(|m| format!("did you mean `{m}`?"))
                            .or_else(|| {
                                (code == Code::UnknownParameter).then(|| "declare it under `parameters:`".to_string())
                            });
                        (code, hint)
                    }
                    _ => (Code::ExpressionSyntax, None),
                };
                // The sandbox's own message may already carry the suggestion.
                let hint = hint
                    .filter(|h| !e.message.contains(h.trim_end_matches('?')) && !e.message.contains("did you mean"));
                self.report(code, place, e.message.clone(), hint);
                None
            }
        }
    }
}

/// Why a parameter value is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// Not a duration.
    Duration(String),
    /// Wrong type or out of range.
    Other(String),
}

/// Checks a value for a parameter (its default, or a dealer's override) and returns it in
/// canonical form.
pub fn check_parameter_value(p: &raw::Parameter, value: &Value) -> Result<Value, ParamError> {
    let bound = |b: &Option<Value>| b.clone();
    match p.kind {
        ParameterKind::Integer | ParameterKind::Number => {
            let n = match (p.kind, value) {
                (ParameterKind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_f64(),
                (ParameterKind::Number, Value::Number(n)) => n.as_f64(),
                _ => {
                    let kind = if p.kind == ParameterKind::Integer { "a whole number" } else { "a number" };
                    return Err(ParamError::Other(format!("{value} is not {kind}")));
                }
            }
            .unwrap_or(f64::NAN);
            for (b, is_min) in [(bound(&p.min), true), (bound(&p.max), false)] {
                let Some(b) = b else { continue };
                let Some(limit) = b.as_f64() else {
                    return Err(ParamError::Other(format!(
                        "the {} {b} is not a number",
                        if is_min { "minimum" } else { "maximum" }
                    )));
                };
                if (is_min && n < limit) || (!is_min && n > limit) {
                    return Err(ParamError::Other(format!(
                        "{value} is {} the {} {b}",
                        if is_min { "below" } else { "above" },
                        if is_min { "minimum" } else { "maximum" }
                    )));
                }
            }
            Ok(value.clone())
        }
        ParameterKind::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(ParamError::Other(format!("{value} is not true or false"))),
        },
        ParameterKind::String => {
            let Some(s) = value.as_str() else { return Err(ParamError::Other(format!("{value} is not a text"))) };
            if let Some(values) = &p.values
                && !values.iter().any(|v| v == s)
            {
                return Err(ParamError::Other(format!("`{s}` is not one of: {}", values.join(", "))));
            }
            Ok(value.clone())
        }
        ParameterKind::Duration => {
            let Some(s) = value.as_str() else {
                return Err(ParamError::Duration(format!("{value} is not a duration")));
            };
            let d = calendar::parse_duration(s).map_err(|e| ParamError::Duration(format!("`{s}`: {e}")))?;
            for (b, is_min) in [(bound(&p.min), true), (bound(&p.max), false)] {
                let Some(b) = b else { continue };
                let limit = b
                    .as_str()
                    .and_then(|t| calendar::parse_duration(t).ok())
                    .ok_or_else(|| ParamError::Duration(format!("the bound {b} is not a duration")))?;
                if (is_min && d < limit) || (!is_min && d > limit) {
                    return Err(ParamError::Other(format!(
                        "{s} is {} the {} {}",
                        if is_min { "below" } else { "above" },
                        if is_min { "minimum" } else { "maximum" },
                        calendar::format_duration(limit)
                    )));
                }
            }
            Ok(Value::String(calendar::format_duration(d)))
        }
    }
}

/// Forms are closed: a submitted field the form does not declare is refused, unless the form
/// explicitly says `additionalProperties`.
fn close_form(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut()
        && !obj.contains_key("additionalProperties")
        && !obj.contains_key("unevaluatedProperties")
    {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    schema
}

fn step_timers(step: &raw::Step) -> &[raw::Timer] {
    match step {
        raw::Step::Task(t) => &t.timers,
        raw::Step::Action(a) => &a.timers,
        raw::Step::Receive(r) => &r.timers,
        raw::Step::Subprocess(s) => &s.timers,
        _ => &[],
    }
}

fn step_title_source(step: &raw::Step) -> (Option<Label>, Option<raw::Source>) {
    match step {
        raw::Step::Task(s) => (Some(s.title.clone()), s.source.clone()),
        raw::Step::Action(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Decision(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Parallel(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Join(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Wait(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Receive(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Send(s) => (s.title.clone(), s.source.clone()),
        raw::Step::Subprocess(s) => (s.title.clone(), s.source.clone()),
        raw::Step::End(s) => (s.title.clone(), s.source.clone()),
    }
}

fn join_or_none(items: &[String]) -> String {
    if items.is_empty() { "(none)".into() } else { items.join(", ") }
}
