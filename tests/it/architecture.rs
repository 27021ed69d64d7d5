//! The module graph flows one way (DESIGN: source → map → dispatch → target, samples →
//! aggregator → results → report). Read from the `crate::` and `super::` paths of every
//! file under src/ (test modules at a file's end left out), so a new `use` that closes a
//! ring fails here, naming the ring.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of a source file: `import/run.rs` → `import::run`, `bench/mod.rs` →
/// `bench`, `lib.rs` → `` (the crate root).
fn module_of(rel: &Path) -> String {
    let s = rel.to_string_lossy().replace('\\', "/");
    let s = s.strip_suffix(".rs").unwrap_or(&s);
    let s = s.strip_suffix("/mod").unwrap_or(s);
    match s {
        "lib" | "main" => String::new(),
        _ => s.replace('/', "::"),
    }
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            // Unit tests sit at the end of a file and may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            out.push((module_of(p.strip_prefix(root).unwrap()), code));
        }
    }
}

/// `a::b::c` of the path that starts at `at` in `code` (identifiers only).
fn path_at(code: &str, at: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = &code[at..];
    loop {
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if n == 0 {
            break;
        }
        parts.push(&rest[..n]);
        rest = &rest[n..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    parts
}

/// The longest module that `segments` (from `base`) names.
fn resolve(modules: &BTreeSet<String>, base: &str, segments: &[&str]) -> Option<String> {
    let mut best = None;
    let mut cur = base.to_string();
    if modules.contains(&cur) {
        best = Some(cur.clone());
    }
    for s in segments {
        cur = if cur.is_empty() {
            s.to_string()
        } else {
            format!("{cur}::{s}")
        };
        if modules.contains(&cur) {
            best = Some(cur.clone());
        } else {
            break;
        }
    }
    best
}

fn parent(m: &str) -> String {
    m.rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_string())
}

/// module → the modules its code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &files {
        let deps = g.entry(m.clone()).or_default();
        for (kw, base) in [("crate::", String::new()), ("super::", parent(m))] {
            for (at, _) in code.match_indices(kw) {
                // `$crate::`, `my_super::`: not a path of this crate.
                if code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                {
                    continue;
                }
                let segs = path_at(code, at + kw.len());
                if let Some(d) = resolve(&modules, &base, &segs) {
                    if &d != m {
                        deps.insert(d);
                    }
                }
            }
        }
    }
    g
}

/// Rings among the children of `parent_mod` (its own mod.rs left out: a parent that
/// declares and re-exports its children is the usual layout, not a ring). An edge to a
/// grandchild counts as an edge to the child that holds it.
fn rings_under(g: &BTreeMap<String, BTreeSet<String>>, parent_mod: &str) -> Vec<Vec<String>> {
    let prefix = format!("{parent_mod}::");
    let child = |m: &str| -> Option<String> {
        let rest = m.strip_prefix(&prefix)?;
        Some(format!("{prefix}{}", rest.split("::").next().unwrap()))
    };
    let mut sub: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, ds) in g {
        let Some(cm) = child(m) else { continue };
        let entry = sub.entry(cm.clone()).or_default();
        for d in ds {
            if let Some(cd) = child(d) {
                if cd != cm {
                    entry.insert(cd);
                }
            }
        }
    }
    cycles(&sub)
}

/// Strongly connected components of more than one node (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// Whether any module under `from` names a module under `to`.
fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Vec<String> {
    let under = |m: &str, top: &str| m == top || m.starts_with(&format!("{top}::"));
    g.iter()
        .filter(|(m, _)| under(m, from))
        .flat_map(|(m, ds)| {
            ds.iter()
                .filter(|d| under(d, to))
                .map(move |d| format!("{m} → {d}"))
        })
        .collect()
}

#[test]
fn the_engines_modules_form_no_rings() {
    let g = graph();
    assert!(g.contains_key("import::run") && g.contains_key("bench::knee"));
    for parent in [
        "import", "bench", "dispatch", "metrics", "report", "server", "source", "mapping", "client",
    ] {
        let rings = rings_under(&g, parent);
        assert!(rings.is_empty(), "rings among {parent}/*: {rings:?}");
    }
}

#[test]
fn bench_import_and_report_meet_only_in_results_and_metrics() {
    let g = graph();
    for (from, to) in [
        ("import", "bench"),
        ("bench", "import"),
        ("metrics", "bench"),
        ("metrics", "import"),
        ("metrics", "report"),
        ("results", "bench"),
        ("results", "import"),
        ("results", "report"),
        ("report", "bench"),
        ("report", "import"),
        ("client", "import"),
        ("client", "bench"),
        // Dispatch knows when and how many, never what: no unit types, no client.
        ("dispatch", "bench"),
        ("dispatch", "import"),
        ("dispatch", "client"),
        ("dispatch", "metrics"),
        ("dispatch", "results"),
        ("dispatch", "report"),
    ] {
        let edges = reaches(&g, from, to);
        assert!(edges.is_empty(), "{from} must not use {to}: {edges:?}");
    }
}

/// The checker itself: a ring it is shown is a ring it finds.
#[test]
fn a_ring_is_found_where_there_is_one() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edge = |g: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    };
    edge(&mut g, "x::a", "x::b");
    edge(&mut g, "x::b", "x::c::deep");
    edge(&mut g, "x::c", "x::a");
    edge(&mut g, "x::c::deep", "x::d");
    assert_eq!(rings_under(&g, "x"), vec![vec!["x::a", "x::b", "x::c"]]);
    assert_eq!(
        path_at("crate::import::run::ImportConfig;", 7),
        ["import", "run", "ImportConfig"]
    );
}
