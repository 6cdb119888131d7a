//! The Google Cloud deployment in `terraform/`, checked offline: Terraform formatting, checkov's
//! policies and the OpenAPI document's validity (`terraform/checks/run_checks.py`), the API
//! Gateway routes against the contract and the local gateway's, every function's Terraform
//! against what its binary reads, and the committed `openapi.yaml` against its template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hcl::{Body, Expression, ObjectKey, Structure};
use yaml_rust2::{Yaml, YamlLoader};

/// The function binaries, by the name their services and images carry.
const FUNCTIONS: &[&str] =
    &["import-trigger", "uploads", "lifecycle", "list", "images", "status", "process-chunk", "web"];

/// The public routes (method, path, function): the contract's API and the web app, as the local
/// gateway routes them (`local_stack::gateway::route_table`), as the API Gateway spec routes them,
/// and as Terraform deploys them (one backend URL per function).
const ROUTES: &[(&str, &str, &str)] = &[
    ("post", "/datasets/import", "import-trigger"),
    ("post", "/uploads", "uploads"),
    ("put", "/uploads/{upload_id}", "uploads"),
    ("get", "/datasets", "list"),
    ("get", "/datasets/{id}", "list"),
    ("patch", "/datasets/{id}", "lifecycle"),
    ("delete", "/datasets/{id}", "lifecycle"),
    ("get", "/datasets/{id}/images", "images"),
    ("get", "/datasets/{id}/images/{image_id}", "images"),
    ("get", "/datasets/{id}/images/{image_id}/file", "images"),
    ("get", "/datasets/{id}/images/{image_id}/label", "images"),
    ("get", "/datasets/{id}/images/{image_id}/thumbnail", "images"),
    ("get", "/datasets/import", "status"),
    ("get", "/datasets/import/{job_id}/status", "status"),
    ("get", "/", "web"),
    ("get", "/ui", "web"),
    ("get", "/ui/{path=**}", "web"),
    ("get", "/docs", "web"),
    ("get", "/docs/openapi.json", "web"),
];

/// The function whose routes take no API key: the web app (its pages ask their user for one).
const KEYLESS_FUNCTION: &str = "web";

/// The API routes that take a signed URL instead of a key (`<img src>` sends no header): the
/// gateway lets them through without one and the images function requires a key or a signature.
const SIGNED_ROUTES: [&str; 2] =
    ["/datasets/{id}/images/{image_id}/file", "/datasets/{id}/images/{image_id}/thumbnail"];

/// The environment variables the binaries read: every quoted `PORT`, `MONGODB_URI` or `YDS_*`
/// name in `shared/config/src/lib.rs` (the only module that reads the environment), plus the
/// tracing filter.
fn known_env() -> BTreeSet<String> {
    let config = read(&repo().join("shared/config/src/lib.rs"));
    let mut names: BTreeSet<String> = config
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            *s == "PORT"
                || *s == "MONGODB_URI"
                || (s.starts_with("YDS_") && s.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        })
        .map(str::to_owned)
        .collect();
    names.insert("RUST_LOG".to_owned());
    names
}

/// Variables that must never be set in production.
const LOCAL_ONLY_ENV: &[&str] =
    &["YDS_CHAOS_CRASH", "YDS_CHAOS_DUPLICATE", "YDS_DATA_DIR", "YDS_STORAGE_DIR", "YDS_QUEUE_DIR"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn terraform_dir() -> PathBuf {
    repo().join("terraform")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// 1. The offline tool checks
// ---------------------------------------------------------------------------------------------

#[test]
fn offline_checks_pass() {
    let script = terraform_dir().join("checks").join("run_checks.py");
    let output = Command::new("python3")
        .arg(&script)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("running python3 {}: {e} (is python3 installed?)", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The API Gateway spec routes exactly the public API
// ---------------------------------------------------------------------------------------------

fn load_yaml(path: &Path) -> Yaml {
    let mut docs =
        YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{} must hold one YAML document", path.display());
    docs.remove(0)
}

fn str_of<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str().unwrap_or_else(|| panic!("{what} must be a string, got {yaml:?}"))
}

/// The host of an `https://host/...` URL.
fn url_host(url: &str) -> &str {
    let rest = url.strip_prefix("https://").unwrap_or_else(|| panic!("backend address `{url}` is not https"));
    rest.split(['/', ':']).next().unwrap_or_default()
}

/// Every `x-google-backend` address anywhere in the document.
fn backend_addresses(yaml: &Yaml, out: &mut Vec<String>) {
    match yaml {
        Yaml::Hash(hash) => {
            for (key, value) in hash {
                if key.as_str() == Some("x-google-backend") {
                    out.push(value["address"].as_str().unwrap_or("<missing address>").to_owned());
                }
                backend_addresses(value, out);
            }
        }
        Yaml::Array(items) => items.iter().for_each(|item| backend_addresses(item, out)),
        _ => {}
    }
}

#[test]
fn gateway_routes_exactly_the_public_api() {
    let spec = load_yaml(&terraform_dir().join("openapi.yaml"));
    assert_eq!(spec["swagger"].as_str(), Some("2.0"), "API Gateway takes OpenAPI 2.0");
    assert!(spec["x-google-backend"].is_badvalue(), "no document-wide backend: each route names its function");

    let key_scheme = &spec["securityDefinitions"]["api_key"];
    assert_eq!(key_scheme["type"].as_str(), Some("apiKey"));
    assert_eq!(key_scheme["in"].as_str(), Some("header"));
    assert_eq!(key_scheme["name"].as_str(), Some("x-api-key"));
    let global_security = spec["security"].as_vec().expect("a global `security` requirement");
    assert!(
        global_security.iter().any(|req| !req["api_key"].is_badvalue()),
        "every route must require the api_key scheme"
    );

    let paths = spec["paths"].as_hash().expect("`paths` must be a mapping");
    let mut found = BTreeMap::new();
    for (path, item) in paths {
        let path = str_of(path, "a path");
        for (method, operation) in item.as_hash().unwrap_or_else(|| panic!("path {path} must be a mapping")) {
            let method = str_of(method, "a method");
            if method == "parameters" || method.starts_with("x-") {
                continue;
            }
            found.insert((method.to_owned(), path.to_owned()), operation.clone());
        }
    }
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(method, path, _)| (method.to_string(), path.to_string())).collect();
    let actual: BTreeSet<(String, String)> = found.keys().cloned().collect();
    assert_eq!(actual, expected, "the spec's operations must be exactly the public routes");

    let mut operation_ids = BTreeSet::new();
    for &(method, path, function) in ROUTES {
        let operation = &found[&(method.to_owned(), path.to_owned())];
        let route = format!("{} {path}", method.to_uppercase());
        let operation_id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{route} has no operationId"));
        assert!(operation_ids.insert(operation_id.to_owned()), "operationId {operation_id} is used twice");
        let backend = &operation["x-google-backend"];
        let address = backend["address"].as_str().unwrap_or_else(|| panic!("{route} has no x-google-backend address"));
        let host_label = url_host(address).split('.').next().unwrap_or_default();
        assert_eq!(host_label, function, "{route} must reach {function}, its backend is {address}");
        assert_eq!(backend["path_translation"].as_str(), Some("APPEND_PATH_TO_ADDRESS"), "{route}");
        assert!(
            backend["deadline"].as_f64().is_some_and(|d| d > 0.0),
            "{route} needs a positive x-google-backend deadline"
        );
        assert!(operation["responses"].as_hash().is_some_and(|r| !r.is_empty()), "{route} declares no responses");
        // The API inherits the document's key requirement; only the web app and the signed
        // routes opt out, explicitly.
        let security = &operation["security"];
        if function == KEYLESS_FUNCTION || SIGNED_ROUTES.contains(&path) {
            assert!(security.as_vec().is_some_and(Vec::is_empty), "{route} must say `security: []`: {security:?}");
        } else {
            assert!(security.is_badvalue(), "{route} must not override the API key requirement: {security:?}");
        }
        if SIGNED_ROUTES.contains(&path) {
            let parameter = |p: &Yaml| match p["$ref"].as_str() {
                Some(at) => {
                    spec["parameters"][at.trim_start_matches("#/parameters/")]["name"].as_str().map(str::to_owned)
                }
                None => p["name"].as_str().map(str::to_owned),
            };
            let names: BTreeSet<String> =
                operation["parameters"].as_vec().into_iter().flatten().filter_map(parameter).collect();
            for name in ["tenant", "expires", "signature"] {
                assert!(names.contains(name), "{route} must declare the signed URL's `{name}`: {names:?}");
            }
        }
    }

    let mut addresses = Vec::new();
    backend_addresses(&spec, &mut addresses);
    assert_eq!(addresses.len(), ROUTES.len(), "one backend per route, no other: {addresses:?}");
    for address in addresses {
        assert!(
            !address.contains("process-chunk"),
            "process-chunk must not be reachable through the gateway: {address}"
        );
    }
}

#[test]
fn the_local_gateway_routes_exactly_the_public_routes() {
    let local: BTreeSet<(String, String, String)> = local_stack::gateway::route_table()
        .into_iter()
        .map(|(method, pattern, function)| (method.as_str().to_lowercase(), pattern.to_owned(), function.to_owned()))
        .collect();
    let expected: BTreeSet<(String, String, String)> =
        ROUTES.iter().map(|(m, p, f)| (m.to_string(), p.to_string(), f.to_string())).collect();
    assert_eq!(local, expected, "the local gateway must route what API Gateway routes, to the same functions");
    let served: BTreeSet<&str> = ROUTES.iter().map(|(_, _, function)| *function).collect();
    for function in FUNCTIONS.iter().filter(|f| **f != "process-chunk") {
        assert!(served.contains(function), "{function} has no public route");
    }
}

// ---------------------------------------------------------------------------------------------
// HCL helpers
// ---------------------------------------------------------------------------------------------

/// One parsed `.tf` file, its path relative to `terraform/`.
struct TfFile {
    path: String,
    body: Body,
}

/// Every `.tf` file under `terraform/` (modules included, `.terraform/` excluded).
fn terraform_files() -> Vec<TfFile> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<TfFile>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') {
                    walk(&path, root, out);
                }
            } else if name.ends_with(".tf") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let body = hcl::parse(&read(&path)).unwrap_or_else(|e| panic!("terraform/{rel} is not valid HCL: {e}"));
                out.push(TfFile { path: rel, body });
            }
        }
    }
    let root = terraform_dir();
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    assert!(!files.is_empty(), "no .tf files under {}", root.display());
    files
}

fn label_strs(block: &hcl::Block) -> Vec<&str> {
    block.labels.iter().map(|label| label.as_str()).collect()
}

/// `(labels, body)` of every block `kind` (resource, variable, module, ...) in the files under `dir`
/// ("" for the root module only, "modules/function" for that module).
fn blocks<'a>(files: &'a [TfFile], dir: &str, kind: &str) -> Vec<(Vec<&'a str>, &'a Body, &'a str)> {
    files
        .iter()
        .filter(|f| Path::new(&f.path).parent().unwrap_or(Path::new("")) == Path::new(dir))
        .flat_map(|f| {
            f.body
                .blocks()
                .filter(move |b| b.identifier.as_str() == kind)
                .map(move |b| (label_strs(b), &b.body, f.path.as_str()))
        })
        .collect()
}

fn attr<'a>(body: &'a Body, name: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key.as_str() == name).map(|a| &a.expr)
}

fn key_name(key: &ObjectKey) -> Option<String> {
    match key {
        ObjectKey::Identifier(ident) => Some(ident.as_str().to_owned()),
        ObjectKey::Expression(Expression::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn format_expr(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_else(|e| format!("<unformattable: {e}>"))
}

/// The `local.NAME` value across the root module's `locals` blocks.
fn root_local<'a>(files: &'a [TfFile], name: &str) -> &'a Expression {
    blocks(files, "", "locals")
        .into_iter()
        .find_map(|(_, body, _)| attr(body, name))
        .unwrap_or_else(|| panic!("the root module has no local.{name}"))
}

/// One environment variable set on a service: its name, value (when literal text) and where.
#[derive(Debug)]
struct EnvSetting {
    name: String,
    value: Option<String>,
    file: String,
}

fn is_env_key(key: &str) -> bool {
    key == "env" || key.ends_with("_env")
}

/// Object literals reachable from `expr` through function calls (`merge`, `tomap`), parentheses
/// and conditionals: the maps an `env`-like attribute is built from.
fn env_maps<'a>(expr: &'a Expression, out: &mut Vec<&'a hcl::Object<ObjectKey, Expression>>) {
    match expr {
        Expression::Object(object) => out.push(object),
        Expression::FuncCall(call) => call.args.iter().for_each(|arg| env_maps(arg, out)),
        Expression::Parenthesis(inner) => env_maps(inner, out),
        Expression::Conditional(cond) => {
            env_maps(&cond.true_expr, out);
            env_maps(&cond.false_expr, out);
        }
        _ => {}
    }
}

/// Every environment variable name the configuration sets: the keys of maps held by attributes
/// named `env` or `*_env` (locals, module arguments), and `env { name = "..." }` blocks.
fn collect_env(body: &Body, file: &str, out: &mut Vec<EnvSetting>) {
    fn visit(key: Option<&str>, expr: &Expression, file: &str, out: &mut Vec<EnvSetting>) {
        if key.is_some_and(is_env_key) {
            let mut maps = Vec::new();
            env_maps(expr, &mut maps);
            for map in maps {
                for (name, value) in map.iter() {
                    let name = key_name(name).unwrap_or_else(|| {
                        panic!("terraform/{file}: an environment variable name is not literal text: {name:?}")
                    });
                    let value = match value {
                        Expression::String(text) => Some(text.clone()),
                        _ => None,
                    };
                    out.push(EnvSetting { name, value, file: file.to_owned() });
                }
            }
        }
        match expr {
            Expression::Object(object) => {
                for (k, v) in object.iter() {
                    visit(key_name(k).as_deref(), v, file, out);
                }
            }
            Expression::FuncCall(call) => call.args.iter().for_each(|arg| visit(None, arg, file, out)),
            Expression::Parenthesis(inner) => visit(None, inner, file, out),
            Expression::Array(items) => items.iter().for_each(|item| visit(None, item, file, out)),
            _ => {}
        }
    }
    for structure in body.iter() {
        match structure {
            Structure::Attribute(a) => visit(Some(a.key.as_str()), &a.expr, file, out),
            Structure::Block(block) => {
                if block.identifier.as_str() == "env" {
                    if let Some(Expression::String(name)) = attr(&block.body, "name") {
                        let value = match attr(&block.body, "value") {
                            Some(Expression::String(text)) => Some(text.clone()),
                            _ => None,
                        };
                        out.push(EnvSetting { name: name.clone(), value, file: file.to_owned() });
                    }
                }
                collect_env(&block.body, file, out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Every function is deployed, and only with variables its binary reads
// ---------------------------------------------------------------------------------------------

#[test]
fn terraform_deploys_every_function() {
    let files = terraform_files();

    // The function module: one Cloud Run service and its own service account.
    let modules = blocks(&files, "", "module");
    let (module_labels, module_body, module_file) = modules
        .iter()
        .find(|(_, body, _)| matches!(attr(body, "source"), Some(Expression::String(s)) if s == "./modules/function"))
        .expect("a module block with source = \"./modules/function\"");
    for (kind, what) in
        [("google_cloud_run_v2_service", "a Cloud Run v2 service"), ("google_service_account", "a service account")]
    {
        let resources = blocks(&files, "modules/function", "resource");
        assert_eq!(
            resources.iter().filter(|(labels, _, _)| labels.first() == Some(&kind)).count(),
            1,
            "modules/function must declare exactly one {kind} ({what} per function)"
        );
    }

    // ... instantiated once per function, from local.functions.
    let for_each = attr(module_body, "for_each").unwrap_or_else(|| {
        panic!("terraform/{module_file}: module {module_labels:?} needs for_each over the functions")
    });
    let local_name = format_expr(for_each);
    let local_name = local_name.strip_prefix("local.").unwrap_or_else(|| {
        panic!("terraform/{module_file}: module {module_labels:?} must iterate over a local, not `{local_name}`")
    });
    let Expression::Object(functions) = root_local(&files, local_name) else {
        panic!("local.{local_name} must be an object literal keyed by function name");
    };
    let declared: BTreeSet<String> = functions.keys().filter_map(key_name).collect();
    let expected: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
    assert_eq!(declared, expected, "local.{local_name} must hold exactly the functions");

    // One image variable per function, used by that function.
    let variables: BTreeSet<&str> =
        blocks(&files, "", "variable").iter().filter_map(|(labels, _, _)| labels.first().copied()).collect();
    for (key, entry) in functions.iter() {
        let function = key_name(key).unwrap();
        let image_var = format!("{}_image", function.replace('-', "_"));
        assert!(variables.contains(image_var.as_str()), "no variable \"{image_var}\" for {function}'s image");
        let text = format_expr(entry);
        assert!(
            text.contains(&format!("var.{image_var}")),
            "local.{local_name}[\"{function}\"] must take its image from var.{image_var}: {text}"
        );
        if function == KEYLESS_FUNCTION {
            for needless in ["mongodb", "secret_env)", "api_keys", "cursor"] {
                assert!(
                    !text.contains(needless),
                    "{function} has no database and no secret, yet names `{needless}`: {text}"
                );
            }
        }
    }

    // Nobody outside the project may invoke anything.
    for file in &files {
        let text = hcl::format::to_string(&file.body).unwrap();
        for public in ["allUsers", "allAuthenticatedUsers"] {
            assert!(!text.contains(public), "terraform/{} grants a role to {public}", file.path);
        }
    }

    // Every environment variable set is one the binaries read.
    let mut settings = Vec::new();
    for file in &files {
        collect_env(&file.body, &file.path, &mut settings);
    }
    let known = known_env();
    for setting in &settings {
        assert!(
            known.contains(&setting.name),
            "terraform/{} sets the environment variable {}, which no function binary reads (known: {known:?})",
            setting.file,
            setting.name
        );
        assert!(
            !LOCAL_ONLY_ENV.contains(&setting.name.as_str()),
            "terraform/{} sets {}, a local-stack-only variable",
            setting.file,
            setting.name
        );
        if setting.name == "YDS_URL_POLICY" {
            assert_eq!(setting.value.as_deref(), Some("strict"), "production must use the strict URL policy");
        }
    }
    let names: BTreeSet<&str> = settings.iter().map(|s| s.name.as_str()).collect();
    for required in ["MONGODB_URI", "YDS_API_KEYS", "YDS_URL_POLICY", "YDS_STORAGE_BACKEND", "YDS_QUEUE_BACKEND"] {
        assert!(names.contains(required), "no service is given {required} (found {names:?})");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The committed openapi.yaml is the template rendered with placeholder URLs
// ---------------------------------------------------------------------------------------------

/// `import_trigger_url` -> `https://import-trigger.example.run.app` (as run_checks.py --render).
fn placeholder_url(variable: &str) -> String {
    let function = variable.strip_suffix("_url").unwrap_or_else(|| panic!("template variable {variable} is not *_url"));
    format!("https://{}.example.run.app", function.replace('_', "-"))
}

/// The variables `templatefile("...openapi.yaml.tftpl", {...})` passes, with their expressions.
fn template_arguments(files: &[TfFile]) -> BTreeMap<String, String> {
    fn find(expr: &Expression, out: &mut Option<BTreeMap<String, String>>) {
        match expr {
            Expression::FuncCall(call) => {
                let is_openapi_template = call.name.name.as_str() == "templatefile"
                    && call.args.first().is_some_and(|path| format_expr(path).contains("openapi.yaml.tftpl"));
                if is_openapi_template {
                    let Some(Expression::Object(vars)) = call.args.get(1) else {
                        panic!("templatefile(openapi.yaml.tftpl, ...) must pass an object literal");
                    };
                    *out = Some(vars.iter().map(|(k, v)| (key_name(k).unwrap(), format_expr(v))).collect());
                }
                call.args.iter().for_each(|arg| find(arg, out));
            }
            Expression::Object(object) => object.values().for_each(|v| find(v, out)),
            Expression::Parenthesis(inner) => find(inner, out),
            _ => {}
        }
    }
    fn walk(body: &Body, out: &mut Option<BTreeMap<String, String>>) {
        for structure in body.iter() {
            match structure {
                Structure::Attribute(a) => find(&a.expr, out),
                Structure::Block(b) => walk(&b.body, out),
            }
        }
    }
    let mut found = None;
    for file in files.iter().filter(|f| !f.path.contains('/')) {
        walk(&file.body, &mut found);
    }
    found.expect("the root module must render openapi.yaml.tftpl with templatefile()")
}

#[test]
fn committed_openapi_is_the_rendered_template() {
    let files = terraform_files();
    let arguments = template_arguments(&files);
    let expected_vars: BTreeSet<String> =
        ROUTES.iter().map(|(_, _, function)| format!("{}_url", function.replace('-', "_"))).collect();
    assert_eq!(
        arguments.keys().cloned().collect::<BTreeSet<_>>(),
        expected_vars,
        "templatefile() must pass one URL per public function, and no other"
    );
    for (var, value) in &arguments {
        let function = var.trim_end_matches("_url").replace('_', "-");
        assert!(
            value.contains(&format!("\"{function}\"")) && value.ends_with(".uri"),
            "{var} must be the Cloud Run URL of {function}, got `{value}`"
        );
        assert!(!value.contains("process"), "{var} must not point at process-chunk: `{value}`");
    }

    let template = read(&terraform_dir().join("openapi.yaml.tftpl"));
    for unsupported in ["$${", "%{"] {
        assert!(
            !template.contains(unsupported),
            "openapi.yaml.tftpl uses `{unsupported}`, which this test cannot render"
        );
    }
    let mut rendered = String::with_capacity(template.len());
    let mut used = BTreeSet::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find("${") {
        rendered.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|i| start + i).expect("an unterminated ${ in openapi.yaml.tftpl");
        let var = &rest[start + 2..end];
        assert!(arguments.contains_key(var), "openapi.yaml.tftpl uses ${{{var}}}, which templatefile() does not pass");
        rendered.push_str(&placeholder_url(var));
        used.insert(var.to_owned());
        rest = &rest[end + 1..];
    }
    rendered.push_str(rest);
    assert_eq!(used, expected_vars, "openapi.yaml.tftpl must use every URL it is given");

    let committed = read(&terraform_dir().join("openapi.yaml"));
    if rendered != committed {
        let line = rendered.lines().zip(committed.lines()).position(|(a, b)| a != b).map_or_else(
            || format!("line {} (one file is longer)", rendered.lines().count().min(committed.lines().count()) + 1),
            |i| format!("line {}", i + 1),
        );
        panic!(
            "terraform/openapi.yaml is not openapi.yaml.tftpl rendered with placeholder URLs (first difference at {line}); \
             run `python3 terraform/checks/run_checks.py --render`"
        );
    }
}

/// Each function's Containerfile builds that function's binary and runs it, not root.
#[test]
fn every_function_has_a_containerfile_for_its_own_binary() {
    for &function in FUNCTIONS {
        let text = read(&repo().join("functions").join(function).join("Containerfile"));
        assert!(text.contains(&format!("cargo build --release --locked -p {function} --bin {function}")), "{function}");
        assert!(text.contains(&format!("ENTRYPOINT [\"/app/{function}\"]")), "{function}");
        assert!(text.contains("USER 65532:65532"), "{function} runs as non-root");
    }
}
