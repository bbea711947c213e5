//! `idcrisis report DIR`: one self-contained HTML page (images embedded, no CDN) covering every
//! experiment found in DIR: its summary (the paper's claims beside ours), its figures, its
//! tables and the configs used.
//!
//! The page checks itself when it loads: it counts images whose `naturalWidth > 0` and records
//! script errors and `console.error` calls in `data-*` attributes of `<body>`, so a headless
//! browser's `--dump-dom` shows whether everything rendered.

use crate::error::{Error, Result};
use crate::fsutil::{self, write_atomic};
use base64::Engine as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Directories under (or equal to) `dir` that hold a finished experiment (`summary.md`).
pub fn experiments(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.join("summary.md").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("summary.md").is_file())
        .collect();
    let order = |p: &PathBuf| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (crate::experiment::reproduce::Experiment::ALL.iter().position(|e| e.name() == name).unwrap_or(99), name)
    };
    v.sort_by_key(order);
    Ok(v)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn inline(s: &str) -> String {
    // `code` spans and **bold**, after escaping.
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            let mut bold = false;
            for (j, b) in part.split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "</b>" } else { "<b>" });
                    bold = !bold;
                }
                out.push_str(b);
            }
            if bold {
                out.push_str("</b>");
            }
        }
    }
    out
}

/// The small Markdown subset `summary.md` uses: headings, pipe tables, `- ` lists, paragraphs.
pub fn markdown(md: &str) -> String {
    let mut html = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if l.trim().is_empty() {
            i += 1;
        } else if let Some(h) = l.strip_prefix("# ") {
            let _ = writeln!(html, "<h3>{}</h3>", inline(h));
            i += 1;
        } else if l.starts_with('|') {
            html.push_str("<table>\n");
            let mut first = true;
            while i < lines.len() && lines[i].starts_with('|') {
                let cells: Vec<&str> = lines[i].trim().trim_matches('|').split('|').map(str::trim).collect();
                let sep = cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'));
                if !sep {
                    let tag = if first { "th" } else { "td" };
                    html.push_str("<tr>");
                    for c in cells {
                        let _ = write!(html, "<{tag}>{}</{tag}>", inline(c));
                    }
                    html.push_str("</tr>\n");
                    first = false;
                }
                i += 1;
            }
            html.push_str("</table>\n");
        } else if l.starts_with("- ") {
            html.push_str("<ul>\n");
            while i < lines.len() && lines[i].starts_with("- ") {
                let _ = writeln!(html, "<li>{}</li>", inline(&lines[i][2..]));
                i += 1;
            }
            html.push_str("</ul>\n");
        } else {
            let mut para = Vec::new();
            while i < lines.len()
                && !lines[i].trim().is_empty()
                && !lines[i].starts_with('|')
                && !lines[i].starts_with("- ")
                && !lines[i].starts_with("# ")
            {
                para.push(lines[i].trim());
                i += 1;
            }
            let _ = writeln!(html, "<p>{}</p>", inline(&para.join(" ")));
        }
    }
    html
}

const STYLE: &str =
    "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.8em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}\
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}\
pre{background:#f7f7f7;padding:.8em;overflow:auto}code{background:#f3f3f3;padding:0 .2em}nav a{margin-right:1em}";

const CHECK: &str = "<script>\n(function(){\n  var errors = 0;\n  window.addEventListener('error', function(){ errors++; document.body.setAttribute('data-errors', errors); }, true);\n  var ce = console.error; console.error = function(){ errors++; document.body.setAttribute('data-errors', errors); ce.apply(console, arguments); };\n  window.addEventListener('load', function(){\n    var imgs = document.images, ok = 0;\n    for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }\n    document.body.setAttribute('data-images', imgs.length);\n    document.body.setAttribute('data-images-ok', ok);\n    document.body.setAttribute('data-errors', errors);\n  });\n})();\n</script>\n";

/// Build `DIR/report.html`; returns its path and the number of embedded images.
pub fn write(dir: &Path) -> Result<(PathBuf, usize)> {
    let exps = experiments(dir)?;
    if exps.is_empty() {
        return Err(Error::invalid(
            "dir",
            format!("no experiment (a directory with summary.md) in {}; run `idcrisis reproduce` first", dir.display()),
        ));
    }
    let mut body = String::new();
    let mut nav = String::new();
    let mut images = 0;
    for e in &exps {
        let name = e.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "experiment".into());
        let _ = write!(nav, "<a href=\"#{0}\">{0}</a>", esc(&name));
        let _ = writeln!(body, "<section id=\"{0}\"><h2>{0}</h2>", esc(&name));
        let md = String::from_utf8_lossy(&fsutil::read(&e.join("summary.md"))?).into_owned();
        body.push_str(&markdown(&md));
        let mut files: Vec<PathBuf> = std::fs::read_dir(e).map_err(|err| Error::io(e, err))?.flatten().map(|f| f.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.extension().is_some_and(|x| x == "png")) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(fsutil::read(f)?);
            let fname = f.file_name().unwrap().to_string_lossy();
            let _ = writeln!(
                body,
                "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{b64}\"><figcaption>{0}</figcaption></figure>",
                esc(&fname)
            );
            images += 1;
        }
        for f in files.iter().filter(|f| f.to_string_lossy().ends_with(".sweep.toml")) {
            let text = String::from_utf8_lossy(&fsutil::read(f)?).into_owned();
            let _ = writeln!(
                body,
                "<details><summary>config: {}</summary><pre>{}</pre></details>",
                esc(&f.file_name().unwrap().to_string_lossy()),
                esc(&text)
            );
        }
        body.push_str("</section>\n");
    }
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>idcrisis report</title><style>{STYLE}</style></head>\n<body>\n{CHECK}<h1>idcrisis: reproducing <i>Identity Crisis</i> (Zhang et al., ICLR 2020)</h1>\n<p>Generated by idcrisis {} from <code>{}</code>.</p>\n<nav>{nav}</nav>\n{body}</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&dir.display().to_string())
    );
    let path = dir.join("report.html");
    write_atomic(&path, html.as_bytes())?;
    Ok((path, images))
}
