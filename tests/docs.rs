//! The walk-throughs in `docs/` checked against the code, so that they cannot drift from
//! it silently:
//!
//! 1. every repository path a page names in backticks (`src/...`, `protocols/...`,
//!    `examples/...`, `tests/...`, `benches/...`, `scripts/...`, `docs/...`) exists;
//! 2. every step of a page's "The path of ..." section is written as
//!    ``N. `FILE` → `NAME`, `NAME`: what happens``, and each `NAME` is defined in `FILE`:
//!    `fn NAME`, or for `Type::NAME` a `fn NAME` inside an `impl ... Type` (or
//!    `trait Type`) block of that file;
//! 3. every page holds its trace between `<!-- trace:NAME:begin -->` and
//!    `<!-- trace:NAME:end -->` (written by `scripts/walkthrough-traces.sh`), not empty,
//!    and so is every `<!-- loop:NAME:... -->` pair;
//! 4. `docs/README.md` links every page, in the order of their numbers, and every page it
//!    links exists.
//!
//! No sockets, no binaries: it reads files. Run it with `cargo test --test docs`.

use std::fs;
use std::path::{Path, PathBuf};

/// The repository's root (this crate's manifest directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every page in `docs/`, README.md excluded, sorted by name (which is the lesson's order).
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("a readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    pages.sort();
    pages
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `docs/NAME.md`, as messages name a page.
fn shown(page: &Path) -> String {
    format!(
        "docs/{}",
        page.file_name().expect("a file name").to_string_lossy()
    )
}

/// The page's lines outside fenced code blocks, with their line numbers (from 1).
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            out.push((i + 1, line));
        }
    }
    out
}

/// The inline code spans of a line (the text between pairs of single backticks).
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

const REPO_PREFIXES: &[&str] = &[
    "src/",
    "protocols/",
    "examples/",
    "tests/",
    "benches/",
    "scripts/",
    "docs/",
];

/// A span that names a file or directory of the repository: one word starting with one of
/// the repository's top-level directories.
fn repo_path(span: &str) -> Option<&str> {
    let looks_like =
        REPO_PREFIXES.iter().any(|p| span.starts_with(p)) && !span.contains(char::is_whitespace);
    looks_like.then_some(span)
}

#[test]
fn every_file_the_docs_name_exists() {
    let mut missing = Vec::new();
    for page in pages().into_iter().chain([root().join("docs/README.md")]) {
        let text = read(&page);
        for (n, line) in prose(&text) {
            for span in code_spans(line).into_iter().filter_map(repo_path) {
                if !root().join(span.trim_end_matches('/')).exists() {
                    missing.push(format!(
                        "{}:{n} names `{span}`, which does not exist",
                        shown(&page)
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

// ------------------------------------------------------------------ the path sections

/// One step of a "path" section: the file and the names said to be defined in it.
#[derive(Debug)]
struct Step {
    line: usize,
    file: String,
    names: Vec<String>,
}

/// The steps of every `## The path of ...` section of `text`, and the numbered items there
/// that are not in the checkable form (each with its line).
fn path_steps(text: &str) -> (Vec<Step>, Vec<String>) {
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    let mut in_section = false;
    for (n, line) in prose(text) {
        if let Some(heading) = line.strip_prefix("## ") {
            in_section = heading.starts_with("The path of");
            continue;
        }
        if !in_section {
            continue;
        }
        let Some(item) = numbered_item(line) else {
            continue;
        };
        match parse_step(item) {
            Some((file, names)) => steps.push(Step {
                line: n,
                file,
                names,
            }),
            None => errors.push(format!(
                "line {n}: a step must read \"N. `FILE` → `NAME`[, `NAME`...]: ...\", found {line:?}"
            )),
        }
    }
    (steps, errors)
}

/// `"12. rest"` → `"rest"`.
fn numbered_item(line: &str) -> Option<&str> {
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    line[digits..].strip_prefix(". ")
}

/// ``"`FILE` → `A`, `B::c`: prose"`` → `(FILE, [A, B::c])`.
fn parse_step(item: &str) -> Option<(String, Vec<String>)> {
    let rest = item.strip_prefix('`')?;
    let (file, rest) = rest.split_once('`')?;
    let mut rest = rest.strip_prefix(" → ")?;
    let mut names = Vec::new();
    loop {
        let r = rest.strip_prefix('`')?;
        let (name, after) = r.split_once('`')?;
        let is_name = !name.is_empty()
            && name.split("::").all(|part| {
                !part.is_empty() && part.chars().all(|c| c == '_' || c.is_alphanumeric())
            });
        if !is_name {
            return None;
        }
        names.push(name.to_string());
        match after.strip_prefix(", ") {
            Some(more) if more.starts_with('`') => rest = more,
            _ => break,
        }
    }
    Some((file.to_string(), names))
}

/// Nothing of an identifier before `s[i]` (a `b` prefix of a byte string aside).
fn starts_word(s: &[char], i: usize) -> bool {
    let ident = |c: char| c == '_' || c.is_alphanumeric();
    match i.checked_sub(1).map(|j| s[j]) {
        None => true,
        Some('b') => i < 2 || !ident(s[i - 2]),
        Some(c) => !ident(c),
    }
}

/// `src` with comments, string and char literals blanked out (same length, newlines kept),
/// so that a search for `fn x` or a brace count sees only code.
fn code_only(src: &str) -> Vec<char> {
    let s: Vec<char> = src.chars().collect();
    let mut out = s.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(s.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = s[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(s.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (1, i + 2);
            while j < s.len() && depth > 0 {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && starts_word(&s, i) {
            // A raw string: r"..." or r#"..."#, as many hashes closing as opening.
            let hashes = s[i + 1..].iter().take_while(|&&c| c == '#').count();
            if s.get(i + 1 + hashes) != Some(&'"') {
                i += 1;
                continue;
            }
            let mut j = i + 2 + hashes;
            while j < s.len() {
                if s[j] == '"'
                    && s[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&c| c == '#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < s.len() && s[j] != '"' {
                j += if s[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a), which is code.
            let end = if next == Some('\\') {
                s.get(i + 3..)
                    .and_then(|rest| rest.iter().position(|&c| c == '\''))
                    .map(|p| i + 3 + p)
            } else if s.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end + 1);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Where `word` occurs in `code` as a whole word, from `from` on.
fn find_word(code: &[char], word: &str, from: usize) -> Option<usize> {
    let w: Vec<char> = word.chars().collect();
    let ident = |c: char| c == '_' || c.is_alphanumeric();
    (from..code.len().saturating_sub(w.len() - 1)).find(|&i| {
        code[i..i + w.len()] == w[..]
            && (i == 0 || !ident(code[i - 1]))
            && code.get(i + w.len()).is_none_or(|&c| !ident(c))
    })
}

/// Is there a `fn name` in `code[from..to]`?
fn defines_fn(code: &[char], name: &str, from: usize, to: usize) -> bool {
    let mut at = from;
    while let Some(i) = find_word(code, "fn", at) {
        if i >= to {
            return false;
        }
        let mut j = i + 2;
        while code.get(j).is_some_and(|c| c.is_whitespace()) {
            j += 1;
        }
        let ident: String = code[j..]
            .iter()
            .take_while(|&&c| c == '_' || c.is_alphanumeric())
            .collect();
        if ident == name {
            return true;
        }
        at = i + 2;
    }
    false
}

/// The type an item header is for: `impl<T> Foo<T>` → Foo, `impl Handler for Bar` → Bar,
/// `pub trait Handler` → Handler.
fn header_type(header: &str) -> Option<String> {
    let h = header.trim();
    let body = if let Some(rest) = h.strip_prefix("impl") {
        let mut rest = rest.trim_start();
        if rest.starts_with('<') {
            // Skip the impl's generic parameters.
            let mut depth = 0;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = rest[end..].trim_start();
        }
        match rest.split_once(" for ") {
            Some((_, ty)) => ty.trim(),
            None => rest,
        }
    } else {
        let after = h.split_once("trait ")?.1;
        after.trim()
    };
    let name: String = body
        .rsplit("::")
        .next()?
        .chars()
        .take_while(|&c| c == '_' || c.is_alphanumeric())
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The `[open, close]` brace positions of every `impl` and `trait` block in `code` whose
/// header is for `ty`. An item header starts its line.
fn blocks_for(code: &[char], ty: &str) -> Vec<(usize, usize)> {
    let text: String = code.iter().collect();
    let mut blocks = Vec::new();
    let mut offset = 0; // in chars
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.chars().count();
        let t = line.trim_start();
        let is_item = t.starts_with("impl ")
            || t.starts_with("impl<")
            || ["trait ", "pub trait ", "pub(crate) trait "]
                .iter()
                .any(|p| t.starts_with(p));
        if !is_item {
            continue;
        }
        let Some(open) = code[start..]
            .iter()
            .position(|&c| c == '{')
            .map(|p| start + p)
        else {
            continue;
        };
        let header: String = code[start..open].iter().collect();
        if header_type(&header).as_deref() != Some(ty) {
            continue;
        }
        let mut depth = 0;
        for (i, &c) in code.iter().enumerate().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        blocks.push((open, i));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    blocks
}

/// Why `name` is not defined in `file`, or `None` if it is.
fn check_name(file: &str, name: &str) -> Option<String> {
    let path = root().join(file);
    let Ok(src) = fs::read_to_string(&path) else {
        return Some(format!("{file} does not exist"));
    };
    let code = code_only(&src);
    match name.rsplit_once("::") {
        None => {
            (!defines_fn(&code, name, 0, code.len())).then(|| format!("{file} has no `fn {name}`"))
        }
        Some((ty, method)) => {
            let ty = ty.rsplit("::").next().unwrap_or(ty);
            let blocks = blocks_for(&code, ty);
            if blocks.is_empty() {
                return Some(format!("{file} has no `impl {ty}` (or `trait {ty}`) block"));
            }
            (!blocks.iter().any(|&(a, b)| defines_fn(&code, method, a, b)))
                .then(|| format!("{file} has no `fn {method}` in an `impl ... {ty}` block"))
        }
    }
}

#[test]
fn every_function_of_every_path_is_defined_where_the_page_says() {
    let mut problems = Vec::new();
    for page in pages() {
        let text = read(&page);
        let (steps, errors) = path_steps(&text);
        for e in errors {
            problems.push(format!("{}: {e}", shown(&page)));
        }
        if steps.len() < 3 {
            problems.push(format!(
                "{}: needs a \"## The path of ...\" section of at least 3 numbered steps, has {}",
                shown(&page),
                steps.len()
            ));
        }
        for step in steps {
            for name in &step.names {
                if let Some(why) = check_name(&step.file, name) {
                    problems.push(format!(
                        "{}:{}: `{}` → `{name}`: {why}",
                        shown(&page),
                        step.line,
                        step.file
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

// ------------------------------------------------------------------ traces and the index

/// The text between `<!-- KIND:NAME:begin -->` and its `end` for every NAME on the page,
/// or what is wrong with the markers.
fn marked(text: &str, kind: &str) -> Result<Vec<(String, String)>, String> {
    let open = format!("<!-- {kind}:");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some((name, tail)) = after.split_once(":begin -->") else {
            return Err(format!("a `{open}...` marker that is not NAME:begin"));
        };
        let end = format!("<!-- {kind}:{name}:end -->");
        let Some((inside, tail)) = tail.split_once(&end) else {
            return Err(format!("`{open}{name}:begin -->` has no `{end}`"));
        };
        found.push((name.to_string(), inside.to_string()));
        rest = tail;
    }
    Ok(found)
}

#[test]
fn every_page_has_a_generated_trace_between_its_markers() {
    let mut problems = Vec::new();
    for page in pages() {
        let text = read(&page);
        for kind in ["trace", "loop"] {
            match marked(&text, kind) {
                Err(e) => problems.push(format!("{}: {e}", shown(&page))),
                Ok(blocks) => {
                    if kind == "trace" && blocks.is_empty() {
                        problems.push(format!(
                            "{}: no `<!-- trace:NAME:begin -->` ... `<!-- trace:NAME:end -->`",
                            shown(&page)
                        ));
                    }
                    for (name, inside) in blocks {
                        let lines = inside
                            .lines()
                            .filter(|l| !l.trim().is_empty() && !l.starts_with("```"))
                            .count();
                        let has_tick = inside.lines().any(|l| l.starts_with("tick "));
                        if lines == 0 || (kind == "trace" && !has_tick) {
                            problems.push(format!(
                                "{}: the {kind} `{name}` is empty (no `tick` line): run \
                                 `bash scripts/walkthrough-traces.sh`",
                                shown(&page)
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_index_links_every_page_in_the_lessons_order() {
    let index = read(&root().join("docs/README.md"));
    // Every `(NAME.md)` link target, in order.
    let links: Vec<&str> = index
        .split("](")
        .skip(1)
        .filter_map(|s| s.split_once(')').map(|(target, _)| target))
        .filter(|t| t.ends_with(".md") && !t.contains('/'))
        .collect();
    let mut problems = Vec::new();
    for link in &links {
        if !root().join("docs").join(link).exists() {
            problems.push(format!("docs/README.md links {link}, which does not exist"));
        }
    }
    let pages: Vec<String> = pages()
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for page in &pages {
        if !links.contains(&page.as_str()) {
            problems.push(format!("docs/README.md does not link {page}"));
        }
    }
    // The numbered pages, in the order their numbers give (the lesson's, as the README's
    // lesson table has it), each first linked after the one before.
    let first_link = |page: &str| links.iter().position(|l| *l == page);
    let numbered: Vec<&String> = pages
        .iter()
        .filter(|p| p.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    for pair in numbered.windows(2) {
        if let (Some(a), Some(b)) = (first_link(pair[0]), first_link(pair[1])) {
            if a > b {
                problems.push(format!(
                    "docs/README.md links {} before {}: keep the lesson's order",
                    pair[1], pair[0]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The checker itself: it must find what is there and refuse what is not, or the tests
/// above prove nothing.
#[test]
fn the_checker_finds_methods_in_their_impl_blocks_only() {
    assert_eq!(
        check_name("src/services/time.rs", "TimeServer::opened"),
        None
    );
    assert_eq!(check_name("src/reactor/io_loops.rs", "read_stream"), None);
    assert_eq!(check_name("src/reactor/settle.rs", "Core::settle"), None);
    assert_eq!(
        check_name("src/reactor/handler.rs", "Handler::opened"),
        None
    );
    assert_eq!(
        check_name(
            "protocols/src/file/line_reader.rs",
            "JsonLineReader::poll_event"
        ),
        None
    );
    // TimeClient has no `opened`; TimeServer's must not count for it.
    assert_eq!(
        check_name("src/services/time.rs", "TimeClient::opened").as_deref(),
        Some("src/services/time.rs has no `fn opened` in an `impl ... TimeClient` block")
    );
    assert_eq!(
        check_name("src/services/time.rs", "no_such_fn").as_deref(),
        Some("src/services/time.rs has no `fn no_such_fn`")
    );
    assert_eq!(
        check_name("src/nowhere.rs", "x").as_deref(),
        Some("src/nowhere.rs does not exist")
    );
    assert_eq!(
        parse_step("`src/a.rs` → `A::b`, `c`: prose with `code`"),
        Some(("src/a.rs".into(), vec!["A::b".into(), "c".into()]))
    );
    assert_eq!(parse_step("`src/a.rs` calls `b`"), None);
    // A `fn` in a comment or a string is not a definition.
    let code =
        code_only("// fn ghost()\nlet s = \"fn ghost\"; let r = r#\"fn ghost\"#; fn real() {}");
    assert!(!defines_fn(&code, "ghost", 0, code.len()));
    assert!(defines_fn(&code, "real", 0, code.len()));
}
