//! The house rules, read from the code's own `use` lines and paths:
//! imports point one way between the layers, nothing but the command line
//! knows meshsim, and no module of `src/` or `sim/src/` imports, directly or
//! around a circle, a module that imports it back.
//!
//! It reads source text, not the compiler's view: paths through `crate::`,
//! `super::`, `self::` and child modules declared with `mod`, `use` trees
//! with braces, and `pub use` re-exports followed to the file that defines
//! the item. A module is made of its submodules, so a parent using its own
//! children is not counted as an import. Unit-test modules (`tests.rs`,
//! `#[cfg(test)] mod ... { }`) are left out: tests may reach across layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Who may import whom: each layer of `migrate` and the layers it may name.
/// `cli` (and `main.rs`) may name everything. `object` is the one object
/// address every layer shares.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "engine",
        &["plan", "cluster", "state", "ca", "object", "check"],
    ),
    ("check", &["cluster", "ca", "object"]),
    ("phases", &["spec", "plan", "object"]),
    ("plan", &["object"]),
    ("spec", &[]),
    ("cluster", &["object"]),
    ("state", &["object"]),
    ("ca", &[]),
    ("object", &[]),
];

#[test]
fn layers_import_one_way() {
    let crate_ = Crate::read(&repo().join("src"));
    let problems = layer_violations(&crate_);
    assert!(
        problems.is_empty(),
        "imports against the direction (src/lib.rs states the rule):\n{}",
        problems.join("\n")
    );
}

#[test]
fn only_the_command_line_knows_meshsim() {
    let problems = meshsim_outside_the_command_line(&Crate::read(&repo().join("src")));
    assert!(
        problems.is_empty(),
        "meshsim named outside src/cli and src/main.rs: {problems:?}"
    );
}

/// Files outside `cli` and `main.rs` that name meshsim.
fn meshsim_outside_the_command_line(crate_: &Crate) -> Vec<String> {
    crate_
        .files
        .iter()
        .filter(|(module, _)| !matches!(module.first().map(String::as_str), Some("cli" | "main")))
        .filter(|(_, file)| file.code.contains("meshsim"))
        .map(|(_, file)| file.path.display().to_string())
        .collect()
}

#[test]
fn no_import_circles_in_migrate() {
    let circles = Crate::read(&repo().join("src")).circles();
    assert!(
        circles.is_empty(),
        "import circles in src/:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_import_circles_in_meshsim() {
    let circles = Crate::read(&repo().join("sim/src")).circles();
    assert!(
        circles.is_empty(),
        "import circles in sim/src/:\n{}",
        circles.join("\n")
    );
}

/// The checks see what they should: a planted import against the direction,
/// a planted circle and a planted meshsim use are each found.
#[test]
fn the_checks_find_what_they_look_for() {
    let mut crate_ = Crate::from_sources(&[
        ("lib.rs", "mod plan; mod engine; mod cli;"),
        ("plan/mod.rs", "mod step;\npub use step::Step;\n"),
        (
            "plan/step.rs",
            "use crate::engine::run;\npub struct Step;\nfn f() { super::Step; }\n",
        ),
        (
            "engine/mod.rs",
            "pub mod run;\nuse crate::plan::{Step, step::{self}};\n",
        ),
        ("engine/run.rs", "use super::super::plan::Step;\n"),
        ("cli/mod.rs", "use meshsim::Sim;\n"),
        (
            "plan/probe.rs",
            "// meshsim in a comment is no use of it\nfn job() { meshsim::probe(); }\n",
        ),
    ]);
    assert_eq!(meshsim_outside_the_command_line(&crate_), ["plan/probe.rs"]);
    let layers = layer_violations(&crate_);
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert!(
        layers[0].contains("plan/step.rs") && layers[0].contains("engine"),
        "{layers:?}"
    );
    let circles = crate_.circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(circles[0].contains("engine/run.rs") && circles[0].contains("plan/step.rs"));
    // Tests inside a file are not part of the house.
    crate_ = Crate::from_sources(&[
        ("lib.rs", "mod plan; mod engine;"),
        (
            "plan/mod.rs",
            "pub struct P;\n#[cfg(test)]\nmod tests {\n    use crate::engine::E;\n    fn f() { let s = \"{\"; }\n}\n",
        ),
        ("engine/mod.rs", "use crate::plan::P;\npub struct E;\n"),
    ]);
    assert!(layer_violations(&crate_).is_empty());
    assert!(crate_.circles().is_empty());
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn layer_violations(crate_: &Crate) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, file) in &crate_.files {
        let Some(layer) = module.first() else {
            continue;
        };
        let Some(may) = allowed.get(layer.as_str()) else {
            continue;
        };
        for path in &file.paths {
            let Some(abs) = crate_.absolute(module, file, path) else {
                continue;
            };
            let Some(target) = abs.first() else { continue };
            let known = allowed.contains_key(target.as_str()) || target == "cli";
            if target != layer && known && !may.contains(&target.as_str()) {
                problems.push(format!(
                    "{}: {layer} imports {}",
                    file.path.display(),
                    abs.join("::")
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// One source file: where it is, its code without comments and test modules,
/// the modules it declares, its paths, and what it re-exports.
struct File {
    path: PathBuf,
    code: String,
    children: BTreeSet<String>,
    paths: Vec<Vec<String>>,
    /// `pub use a::b::Name` and `pub use a::b::{Name, c::Other}`: name -> path.
    reexports: BTreeMap<String, Vec<String>>,
    /// `pub use a::b::*`: the modules whose items this one re-exports.
    globs: Vec<Vec<String>>,
    /// Items the file defines (struct, enum, fn, trait, type, const, static, macro).
    defines: BTreeSet<String>,
}

/// Every module of one crate by its path (`[]` for the crate root).
struct Crate {
    files: BTreeMap<Vec<String>, File>,
}

impl Crate {
    fn read(root: &Path) -> Crate {
        let mut sources = Vec::new();
        collect(root, root, &mut sources);
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(rel, text)| (rel.as_str(), text.as_str()))
            .collect();
        Crate::from_sources(&borrowed)
    }

    /// `rel` is the path under the crate's source directory.
    fn from_sources(sources: &[(&str, &str)]) -> Crate {
        let mut files = BTreeMap::new();
        for (rel, text) in sources {
            if rel.ends_with("tests.rs") || rel.contains("/tests/") {
                continue;
            }
            let module = module_path(rel);
            let code = strip(text);
            let mut paths = Vec::new();
            let mut reexports = BTreeMap::new();
            let mut globs = Vec::new();
            for statement in use_statements(&code) {
                let glob = statement.tree.trim_end().ends_with('*');
                for (path, name) in expand_use(&statement.tree) {
                    if statement.public && glob {
                        globs.push(path.clone());
                    } else if statement.public {
                        reexports.insert(name, path.clone());
                    }
                    paths.push(path);
                }
            }
            let defines = defined_items(&code);
            paths.extend(inline_paths(&code));
            let children = declared_modules(&code);
            files.insert(
                module,
                File {
                    path: PathBuf::from(rel),
                    code,
                    children,
                    paths,
                    reexports,
                    globs,
                    defines,
                },
            );
        }
        Crate { files }
    }

    /// A path as written in `module` made absolute from the crate root, or
    /// `None` for another crate's (std, serde, meshsim ...).
    fn absolute(&self, module: &[String], file: &File, path: &[String]) -> Option<Vec<String>> {
        let mut base: Vec<String> = module.to_vec();
        // A non-mod.rs file's `super` is its parent; `module` already is the file's own module.
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) if file.children.contains(first) => {}
            Some(first)
                if module.is_empty() && self.files.contains_key(&vec![first.to_string()]) => {}
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what an absolute path names: the deepest module
    /// on the path, following that module's `pub use` for the next name.
    fn resolve(&self, abs: &[String], depth: usize) -> Option<&Vec<String>> {
        let mut module: Vec<String> = Vec::new();
        for (i, segment) in abs.iter().enumerate() {
            let mut next = module.clone();
            next.push(segment.clone());
            if self.files.contains_key(&next) {
                module = next;
                continue;
            }
            // An item of `module`: defined there, or re-exported from elsewhere.
            let file = self.files.get(&module)?;
            if file.defines.contains(segment) || depth >= 8 {
                break;
            }
            let mut via: Vec<Vec<String>> =
                file.reexports.get(segment).into_iter().cloned().collect();
            for glob in &file.globs {
                let mut candidate = glob.clone();
                candidate.push(segment.clone());
                via.push(candidate);
            }
            for path in via {
                let Some(mut whole) = self.absolute(&module, file, &path) else {
                    continue;
                };
                whole.extend(abs[i + 1..].iter().cloned());
                if let Some(found) = self.resolve(&whole, depth + 1) {
                    // A glob only counts where the item really is.
                    let there = &self.files[found];
                    let named = whole.get(found.len()).is_none_or(|n| {
                        there.defines.contains(n) || there.reexports.contains_key(n)
                    });
                    if named {
                        return Some(found);
                    }
                }
            }
            break;
        }
        self.files.get_key_value(&module).map(|(k, _)| k)
    }

    /// Every circle of imports between files, each as its files in order.
    fn circles(&self) -> Vec<String> {
        let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
        for (module, file) in &self.files {
            let out = edges.entry(module).or_default();
            for path in &file.paths {
                let Some(abs) = self.absolute(module, file, path) else {
                    continue;
                };
                // A module is made of its submodules: a parent using its
                // children (a facade, a dispatch) is not an import.
                if let Some(target) = self.resolve(&abs, 0).filter(|t| !t.starts_with(module)) {
                    out.insert(target);
                }
            }
        }
        strongly_connected(&edges)
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| {
                group
                    .iter()
                    .map(|m| self.files[*m].path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" <-> ")
            })
            .collect()
    }
}

/// Every `.rs` file under `dir`, with its path relative to `root`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under root");
            let text = std::fs::read_to_string(&path).expect("source reads");
            out.push((rel.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

/// `engine/mod.rs` -> `engine`, `engine/action.rs` -> `engine::action`,
/// `lib.rs` -> the root, `main.rs` -> `main` (the binary, a crate of its own).
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code without comments, with every string and char literal emptied
/// (so neither `//` nor a brace inside one misleads what follows), and
/// without `#[cfg(test)]` modules.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char_before(&chars, i)
        {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal (a lifetime has no closing quote two places on).
            let mut j = i + 1;
            if chars[j] == '\\' {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_modules(&out)
}

fn ident_char_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Drops `#[cfg(test)] mod name { ... }` and `#[cfg(test)] mod name;`.
fn remove_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let item_is_mod = trimmed.starts_with("mod ") || trimmed.starts_with("pub(crate) mod ");
        if !item_is_mod {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let open = trimmed.find(['{', ';']).unwrap_or(trimmed.len());
        if trimmed[open..].starts_with(';') {
            rest = &trimmed[open + 1..];
            continue;
        }
        let mut depth = 0;
        let mut end = trimmed.len();
        for (k, ch) in trimmed[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &trimmed[end..];
    }
    out.push_str(rest);
    out
}

/// A `use` statement: its tree (`a::{b, c::D as E}`) and whether it re-exports.
struct UseStatement {
    public: bool,
    tree: String,
}

fn use_statements(code: &str) -> Vec<UseStatement> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        from = start + 4;
        let boundary = start == 0
            || matches!(
                bytes[start - 1],
                b' ' | b'\n' | b'\t' | b';' | b'{' | b'}' | b')'
            );
        if !boundary {
            continue;
        }
        let Some(len) = code[from..].find(';') else {
            break;
        };
        let before = code[..start].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        found.push(UseStatement {
            public,
            tree: code[from..from + len].to_string(),
        });
        from += len;
    }
    found
}

/// The paths a use tree names, each with the name it is known by here:
/// `a::{b, c::{self, D as E}}` -> `a::b` (b), `a::c` (c), `a::c::D` (E).
fn expand_use(tree: &str) -> Vec<(Vec<String>, String)> {
    let tokens = tokenize(tree);
    let mut paths = Vec::new();
    let mut pos = 0;
    expand_at(&tokens, &mut pos, &[], &mut paths);
    paths
        .into_iter()
        .filter_map(|mut path| {
            let alias = match path.iter().position(|s| s == "as") {
                Some(i) => {
                    let alias = path.get(i + 1).cloned();
                    path.truncate(i);
                    alias
                }
                None => None,
            };
            let name = alias.or_else(|| path.last().cloned())?;
            Some((path, name))
        })
        .collect()
}

/// The tokens of a use tree: words, `::`, braces, commas and `*`.
fn tokenize(tree: &str) -> Vec<String> {
    tokenize_code(tree)
        .into_iter()
        .filter(|t| {
            t.chars().all(|c| c.is_alphanumeric() || c == '_')
                || matches!(t.as_str(), "::" | "{" | "}" | "," | "*")
        })
        .collect()
}

fn expand_at(tokens: &[String], pos: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    while *pos < tokens.len() {
        let token = tokens[*pos].as_str();
        match token {
            "::" => *pos += 1,
            "{" => {
                *pos += 1;
                while *pos < tokens.len() && tokens[*pos] != "}" {
                    if tokens[*pos] == "," {
                        *pos += 1;
                        continue;
                    }
                    expand_at(tokens, pos, &path, out);
                }
                *pos += 1;
                return;
            }
            "}" | "," => break,
            // `a::{self}` names `a` itself; a leading `self::` is kept for `absolute`.
            "self" if !path.is_empty() => *pos += 1,
            "*" => *pos += 1,
            "as" => {
                path.push("as".into());
                *pos += 1;
                if let Some(alias) = tokens.get(*pos) {
                    path.push(alias.clone());
                    *pos += 1;
                }
            }
            word => {
                path.push(word.to_string());
                *pos += 1;
            }
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Paths used in code outside `use`: `crate::a::b`, `super::x`, `self::y`,
/// and `child::f` for a module `child` this file declares.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let children = declared_modules(code);
    let tokens = tokenize_code(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts = matches!(tokens[i].as_str(), "crate" | "super" | "self")
            || children.contains(&tokens[i]);
        let preceded_by_path = i > 0 && tokens[i - 1] == "::";
        if starts && !preceded_by_path && tokens.get(i + 1).map(String::as_str) == Some("::") {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).map(String::as_str) == Some("::") {
                match tokens.get(j + 1) {
                    Some(t) if t.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                        path.push(t.clone());
                        j += 2;
                    }
                    _ => break,
                }
            }
            // `super::{a, b}` and `super::*` are use trees, read by `use_statements`.
            if path.len() > 1 {
                out.push(path);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn tokenize_code(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            if c == ':' && chars.get(i + 1) == Some(&':') {
                tokens.push("::".into());
                i += 1;
            } else if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
        }
        i += 1;
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Items a file defines, by name.
fn defined_items(code: &str) -> BTreeSet<String> {
    let tokens = tokenize_code(code);
    tokens
        .windows(2)
        .filter(|w| {
            matches!(
                w[0].as_str(),
                "struct" | "enum" | "fn" | "trait" | "type" | "const" | "static" | "union"
            )
        })
        .map(|w| w[1].clone())
        .chain(
            tokens
                .windows(4)
                .filter(|w| w[0] == "macro_rules" && w[1] == "!")
                .map(|w| w[2].clone()),
        )
        .collect()
}

/// Modules declared in a file: `mod a;`, `pub mod b;`, `mod c { ... }`.
fn declared_modules(code: &str) -> BTreeSet<String> {
    let tokens = tokenize_code(code);
    tokens
        .windows(3)
        .filter(|w| w[0] == "mod" && (w[2] == ";" || w[2] == "{"))
        .map(|w| w[1].clone())
        .collect()
}

/// Tarjan's strongly connected components.
fn strongly_connected<'a>(
    edges: &BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
) -> Vec<Vec<&'a Vec<String>>> {
    struct Walk<'a, 'e> {
        edges: &'e BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        groups: Vec<Vec<&'a Vec<String>>>,
    }
    impl<'a> Walk<'a, '_> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for &w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                group.sort();
                self.groups.push(group);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for &v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.groups
}
