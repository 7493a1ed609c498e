//! A process as an SVG diagram, laid out here in Rust, with an instance's current steps
//! highlighted and every label in the reader's language.
//!
//! The layout is a small layered (Sugiyama-style) one, enough for processes of a few dozen
//! steps: loops are found by a depth-first walk from the start and drawn as edges going up;
//! every step gets the layer of its longest path from the start; edges that skip layers get
//! invisible waypoints; a few median sweeps order each layer to reduce crossings; and each
//! layer is placed as close to its neighbours' medians as the order allows (isotonic
//! regression, so the result is the least-squares placement, not a heuristic nudge).
//!
//! The SVG carries presentation attributes for a plain look on its own, and classes
//! (`step`, `task`, `decision`, `current`, `visited`, `edge`, `loop`, `timer`) that the web
//! app's stylesheet refines; it has no `<style>` element or `style` attribute, so a strict
//! Content-Security-Policy lets it be inlined. Each step is a `<g data-step="id">` with a
//! `<title>` (the full title and roles), so it reads well to a screen reader and can be
//! scrolled into view.
//!
//! Deliberately absent: no clock, no I/O, no randomness; the same process and options give
//! the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use model::{EdgeKind, Process, StepKind};

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `zh` or `en` (anything else reads as `en`).
    pub lang: String,
    /// Steps where the instance stands now: drawn highlighted.
    pub current: Vec<String>,
    /// Steps the instance has passed through: drawn lightly tinted.
    pub visited: Vec<String>,
}

/// The diagram as a standalone SVG document (also fit to inline into HTML).
pub fn svg(process: &Process, options: &Options) -> String {
    let zh = options.lang == "zh";
    let graph = Graph::of(process, zh);
    let layout = Layout::of(&graph);
    render(process, &graph, &layout, options, zh)
}

/// Horizontal gap between boxes of one layer.
const GAP_X: f64 = 28.0;
/// Vertical gap between layers; room for an edge label.
const GAP_Y: f64 = 54.0;
/// Width of a waypoint of a long edge.
const DUMMY_W: f64 = 14.0;
/// Longest line of a box's title, in pixels, before it wraps.
const WRAP_W: f64 = 190.0;
/// Lines of title shown; the rest is in the `<title>` tooltip.
const MAX_LINES: usize = 3;
const FONT: f64 = 13.0;
const SMALL: f64 = 11.0;
const LINE_H: f64 = 16.0;
const PAD_X: f64 = 12.0;
const PAD_Y: f64 = 8.0;
const MARGIN: f64 = 16.0;

/// A box's shape, from the step's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Start,
    Task,
    Auto,
    Decision,
    Gate,
    Wait,
    End,
}

#[derive(Debug)]
struct Node {
    /// The step id (empty for the start dot).
    id: String,
    kind: &'static str,
    shape: Shape,
    lines: Vec<String>,
    sub: Option<String>,
    tooltip: String,
    w: f64,
    h: f64,
}

#[derive(Debug)]
struct Edge {
    from: usize,
    to: usize,
    label: Option<String>,
    timer: bool,
}

#[derive(Debug)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    fn of(p: &Process, zh: bool) -> Graph {
        let lang = if zh { "zh" } else { "en" };
        let mut nodes = vec![Node {
            id: String::new(),
            kind: "start",
            shape: Shape::Start,
            lines: Vec::new(),
            sub: None,
            tooltip: if zh { "開始" } else { "Start" }.into(),
            w: 18.0,
            h: 18.0,
        }];
        for step in &p.steps {
            let title = step.title.text(lang);
            let name = if title.is_empty() { step.id.as_str() } else { title };
            let (shape, icon, sub) = match &step.kind {
                StepKind::Task { task, .. } => {
                    let roles: Vec<&str> =
                        task.roles.iter().map(|r| p.roles.get(r).map_or(r.as_str(), |l| l.text(lang))).collect();
                    (Shape::Task, "", Some(roles.join(zh_sep(zh))))
                }
                StepKind::Action { action, .. } => (Shape::Auto, "⚙ ", Some(action.clone())),
                StepKind::Subprocess { process, .. } => (Shape::Auto, "↳ ", Some(process.clone())),
                StepKind::Decision { .. } => (Shape::Decision, "", None),
                StepKind::Parallel { .. } => (Shape::Gate, "∥ ", None),
                StepKind::Join { .. } => (Shape::Gate, "⋈ ", None),
                StepKind::Wait { .. } => (Shape::Wait, "⏳ ", None),
                StepKind::Receive { message, .. } => (Shape::Wait, "✉ ", Some(message.clone())),
                StepKind::Send { message, .. } => (Shape::Wait, "✉ ", Some(message.clone())),
                StepKind::End { outcome, .. } => (Shape::End, "■ ", Some(outcome.clone())),
            };
            let timers: Vec<String> = step
                .kind
                .timers()
                .iter()
                .map(|t| t.title.as_ref().map_or(t.id.clone(), |l| l.text(lang).to_string()))
                .collect();
            let mut lines = wrap(&format!("{icon}{name}"), WRAP_W);
            if lines.len() > MAX_LINES {
                lines.truncate(MAX_LINES);
                if let Some(last) = lines.last_mut() {
                    last.push('…');
                }
            }
            let sub = match (sub, timers.is_empty()) {
                (Some(s), false) => Some(format!("{s} · ⏱{}", timers.len())),
                (None, false) => Some(format!("⏱{}", timers.len())),
                (s, true) => s,
            };
            let sub = sub.map(|s| ellipsize(&s, WRAP_W + 30.0));
            let mut tooltip = name.to_string();
            if let StepKind::Task { task, .. } = &step.kind {
                let roles: Vec<&str> =
                    task.roles.iter().map(|r| p.roles.get(r).map_or(r.as_str(), |l| l.text(lang))).collect();
                let _ = write!(tooltip, " ({})", roles.join(zh_sep(zh)));
            }
            for t in &timers {
                let _ = write!(tooltip, "\n⏱ {t}");
            }
            // Bold (the current step) is drawn wider; size every box for it so the layout does
            // not move when the position does.
            let text_w = lines.iter().map(|l| text_width(l, FONT) * 1.08).fold(0.0, f64::max);
            let sub_w = sub.as_deref().map_or(0.0, |s| text_width(s, SMALL));
            let mut w = text_w.max(sub_w) + 2.0 * PAD_X;
            let mut h = lines.len() as f64 * LINE_H + if sub.is_some() { LINE_H - 2.0 } else { 0.0 } + 2.0 * PAD_Y;
            if shape == Shape::Decision || shape == Shape::Gate {
                // The pointed ends of the hexagon take room from the text.
                w += h * 0.6;
            }
            w = w.max(60.0);
            h = h.max(34.0);
            nodes.push(Node { id: step.id.clone(), kind: step.kind.name(), shape, lines, sub, tooltip, w, h });
        }
        let mut edges = vec![Edge { from: 0, to: p.start.get() + 1, label: None, timer: false }];
        for (i, step) in p.steps.iter().enumerate() {
            for e in step.kind.edges() {
                let label = match (&step.kind, e.kind) {
                    (StepKind::Decision { branches, .. }, EdgeKind::Branch(b)) => {
                        branches.get(b).map(|b| match &b.label {
                            Some(l) if !l.text(lang).is_empty() => l.text(lang).to_string(),
                            _ => b.guard.source().trim().to_string(),
                        })
                    }
                    (_, EdgeKind::Default) => Some(if zh { "否則" } else { "else" }.into()),
                    (_, EdgeKind::Abort) => Some(if zh { "提前結束" } else { "stop early" }.into()),
                    (_, EdgeKind::OnFailure) => Some(if zh { "失敗" } else { "failed" }.into()),
                    (_, EdgeKind::Timer(t)) => step.kind.timers().get(t).map(|t| format!("⏱ {}", t.id)),
                    _ => None,
                };
                edges.push(Edge {
                    from: i + 1,
                    to: e.to.get() + 1,
                    label: label.map(|l| ellipsize(&l, 150.0)),
                    timer: matches!(e.kind, EdgeKind::Timer(_)),
                });
            }
        }
        Graph { nodes, edges }
    }
}

fn zh_sep(zh: bool) -> &'static str {
    if zh { "、" } else { ", " }
}

/// A laid-out graph: a position for every node and a chain of points for every edge.
#[derive(Debug)]
struct Layout {
    /// Centre of each real node.
    pos: Vec<(f64, f64)>,
    /// For each edge of [`Graph::edges`]: the points from the source to the target, and
    /// whether it goes up (a loop back).
    routes: Vec<(Vec<(f64, f64)>, bool)>,
    width: f64,
    height: f64,
}

impl Layout {
    fn of(g: &Graph) -> Layout {
        let n = g.nodes.len();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, e) in g.edges.iter().enumerate() {
            out[e.from].push(i);
        }

        // 1. Depth-first from the start: an edge to a node still on the stack closes a loop.
        let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
        let mut preorder = vec![usize::MAX; n];
        let mut back = vec![false; g.edges.len()];
        let mut counter = 0;
        for root in 0..n {
            if state[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root] = 1;
            preorder[root] = counter;
            counter += 1;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if let Some(&ei) = out[v].get(*next) {
                    *next += 1;
                    let w = g.edges[ei].to;
                    match state[w] {
                        0 => {
                            state[w] = 1;
                            preorder[w] = counter;
                            counter += 1;
                            stack.push((w, 0));
                        }
                        1 => back[ei] = true,
                        _ => {}
                    }
                } else {
                    state[v] = 2;
                    stack.pop();
                }
            }
        }

        // 2. Layers: the longest path from the start over the graph with loops turned round.
        let dag: Vec<(usize, usize)> = g
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.from != e.to)
            .map(|(i, e)| if back[i] { (e.to, e.from) } else { (e.from, e.to) })
            .collect();
        let mut indegree = vec![0usize; n];
        for &(_, b) in &dag {
            indegree[b] += 1;
        }
        let mut layer = vec![0usize; n];
        let mut ready: BTreeSet<(usize, usize)> =
            (0..n).filter(|&v| indegree[v] == 0).map(|v| (preorder[v], v)).collect();
        while let Some((_, v)) = ready.pop_first() {
            for &(a, b) in dag.iter().filter(|(a, _)| *a == v) {
                layer[b] = layer[b].max(layer[a] + 1);
                indegree[b] -= 1;
                if indegree[b] == 0 {
                    ready.insert((preorder[b], b));
                }
            }
        }

        // 3. Waypoints for edges that skip layers, so they bend around boxes, not through them.
        // `chain[i]` lists the layout nodes an edge passes, top to bottom.
        let mut widths: Vec<f64> = g.nodes.iter().map(|x| x.w).collect();
        let mut heights: Vec<f64> = g.nodes.iter().map(|x| x.h).collect();
        let mut layer_of = layer.clone();
        let mut order_key: Vec<f64> = preorder.iter().map(|&p| p as f64).collect();
        let mut chains: Vec<Vec<usize>> = Vec::with_capacity(g.edges.len());
        for (i, e) in g.edges.iter().enumerate() {
            let (top, bottom) = if back[i] { (e.to, e.from) } else { (e.from, e.to) };
            let mut chain = vec![top];
            if top != bottom {
                for l in layer[top] + 1..layer[bottom] {
                    let d = widths.len();
                    widths.push(DUMMY_W);
                    heights.push(0.0);
                    layer_of.push(l);
                    order_key.push(order_key[top] + 0.5);
                    chain.push(d);
                }
            }
            chain.push(bottom);
            chains.push(chain);
        }
        let total = widths.len();
        let n_layers = layer_of.iter().max().map_or(0, |m| m + 1);
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); total];
        let mut down: Vec<Vec<usize>> = vec![Vec::new(); total];
        for chain in &chains {
            for pair in chain.windows(2) {
                if pair[0] != pair[1] {
                    down[pair[0]].push(pair[1]);
                    up[pair[1]].push(pair[0]);
                }
            }
        }

        // 4. Order within layers: median sweeps down and up, keeping the best order seen.
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
        for v in 0..total {
            layers[layer_of[v]].push(v);
        }
        for l in &mut layers {
            l.sort_by(|a, b| order_key[*a].total_cmp(&order_key[*b]).then(a.cmp(b)));
        }
        let mut rank = vec![0.0f64; total];
        let set_rank = |layers: &Vec<Vec<usize>>, rank: &mut Vec<f64>| {
            for l in layers {
                for (i, &v) in l.iter().enumerate() {
                    rank[v] = i as f64;
                }
            }
        };
        set_rank(&layers, &mut rank);
        let mut best = layers.clone();
        let mut best_crossings = crossings(&layers, &down, &rank);
        for sweep in 0..8 {
            let downward = sweep % 2 == 0;
            let range: Vec<usize> =
                if downward { (1..n_layers).collect() } else { (0..n_layers.saturating_sub(1)).rev().collect() };
            for l in range {
                let keys: BTreeMap<usize, f64> = layers[l]
                    .iter()
                    .map(|&v| {
                        let nbrs = if downward { &up[v] } else { &down[v] };
                        (v, median(nbrs.iter().map(|&u| rank[u]).collect()).unwrap_or(rank[v]))
                    })
                    .collect();
                layers[l].sort_by(|a, b| keys[a].total_cmp(&keys[b]).then(rank[*a].total_cmp(&rank[*b])));
                for (i, &v) in layers[l].iter().enumerate() {
                    rank[v] = i as f64;
                }
            }
            let c = crossings(&layers, &down, &rank);
            if c < best_crossings {
                best_crossings = c;
                best = layers.clone();
            }
        }
        let layers = best;

        // 5. Horizontal places: each layer as near its neighbours' medians as its order allows.
        let mut x = vec![0.0f64; total];
        for l in &layers {
            let mut cursor = 0.0;
            for &v in l {
                x[v] = cursor + widths[v] / 2.0;
                cursor += widths[v] + GAP_X;
            }
        }
        for pass in 0..12 {
            let downward = pass % 2 == 0;
            let range: Vec<usize> =
                if downward { (1..n_layers).collect() } else { (0..n_layers.saturating_sub(1)).rev().collect() };
            for l in range {
                let wanted: Vec<f64> = layers[l]
                    .iter()
                    .map(|&v| {
                        let nbrs = if downward { &up[v] } else { &down[v] };
                        median(nbrs.iter().map(|&u| x[u]).collect()).unwrap_or(x[v])
                    })
                    .collect();
                let seps: Vec<f64> =
                    layers[l].windows(2).map(|w| (widths[w[0]] + widths[w[1]]) / 2.0 + GAP_X).collect();
                for (&v, pos) in layers[l].iter().zip(place_in_order(&wanted, &seps)) {
                    x[v] = pos;
                }
            }
        }
        let left = (0..total).map(|v| x[v] - widths[v] / 2.0).fold(f64::INFINITY, f64::min);
        let right = (0..total).map(|v| x[v] + widths[v] / 2.0).fold(f64::NEG_INFINITY, f64::max);
        for v in &mut x {
            *v += MARGIN - left;
        }

        // 6. Vertical places: each layer as tall as its tallest box.
        let mut y = vec![0.0f64; total];
        let mut top = MARGIN;
        for l in &layers {
            let h = l.iter().map(|&v| heights[v]).fold(0.0, f64::max);
            for &v in l {
                y[v] = top + h / 2.0;
            }
            top += h + GAP_Y;
        }

        let routes = chains
            .iter()
            .enumerate()
            .map(|(i, chain)| {
                let mut pts: Vec<(f64, f64)> = chain.iter().map(|&v| (x[v], y[v])).collect();
                if back[i] {
                    pts.reverse();
                }
                (pts, back[i])
            })
            .collect();
        Layout {
            pos: (0..n).map(|v| (x[v], y[v])).collect(),
            routes,
            width: right - left + 2.0 * MARGIN,
            height: top - GAP_Y + MARGIN,
        }
    }
}

/// Edge crossings between consecutive layers (each pair counted once).
fn crossings(layers: &[Vec<usize>], down: &[Vec<usize>], rank: &[f64]) -> usize {
    let mut total = 0;
    for l in layers {
        let segs: Vec<(f64, f64)> = l.iter().flat_map(|&a| down[a].iter().map(move |&b| (rank[a], rank[b]))).collect();
        for (i, s) in segs.iter().enumerate() {
            for t in &segs[i + 1..] {
                if (s.0 - t.0) * (s.1 - t.1) < 0.0 {
                    total += 1;
                }
            }
        }
    }
    total
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// Positions as close as possible (least squares) to `wanted`, in the given order, with at
/// least `seps[i]` between the `i`-th and the next: shift each point left by the separations
/// before it, fit a non-decreasing sequence (pool adjacent violators), shift back.
fn place_in_order(wanted: &[f64], seps: &[f64]) -> Vec<f64> {
    let mut offset = Vec::with_capacity(wanted.len());
    let mut acc = 0.0;
    for i in 0..wanted.len() {
        if i > 0 {
            acc += seps[i - 1];
        }
        offset.push(acc);
    }
    // Blocks of (sum, count) whose means are non-decreasing.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for (w, o) in wanted.iter().zip(&offset) {
        blocks.push((w - o, 1));
        while blocks.len() > 1 {
            let (s2, c2) = blocks[blocks.len() - 1];
            let (s1, c1) = blocks[blocks.len() - 2];
            if s1 / c1 as f64 <= s2 / c2 as f64 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, c1 + c2);
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (s, c) in blocks {
        for _ in 0..c {
            out.push(s / c as f64);
        }
    }
    out.iter().zip(&offset).map(|(v, o)| v + o).collect()
}

fn render(process: &Process, g: &Graph, lay: &Layout, options: &Options, zh: bool) -> String {
    let lang = if zh { "zh" } else { "en" };
    let current: BTreeSet<&str> = options.current.iter().map(String::as_str).collect();
    let visited: BTreeSet<&str> = options.visited.iter().map(String::as_str).collect();
    let mut s = String::new();
    let title = process.title.text(lang);
    let here: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| current.contains(n.id.as_str()))
        .map(|n| n.tooltip.split(['\n', '(']).next().unwrap_or("").trim())
        .collect();
    let desc = match (here.is_empty(), zh) {
        (true, true) => format!("{} 個步驟的流程圖", g.nodes.len() - 1),
        (true, false) => format!("Flowchart of {} steps", g.nodes.len() - 1),
        (false, true) => format!("目前位置：{}", here.join("、")),
        (false, false) => format!("Now at: {}", here.join(", ")),
    };
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"process-diagram\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-labelledby=\"diagram-title diagram-desc\" \
         font-family=\"system-ui, 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'Microsoft YaHei', sans-serif\" \
         font-size=\"{FONT}\" data-process=\"{pid}\">",
        w = lay.width,
        h = lay.height,
        pid = esc(&process.id),
    );
    let _ = writeln!(s, "<title id=\"diagram-title\">{}</title>", esc(title));
    let _ = writeln!(s, "<desc id=\"diagram-desc\">{}</desc>", esc(&desc));
    s.push_str(
        "<defs><marker id=\"diagram-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#475569\"/>\
         </marker></defs>\n",
    );

    // Edges first, so boxes sit on top of them.
    s.push_str("<g class=\"edges\" fill=\"none\" stroke=\"#475569\" stroke-width=\"1.4\">\n");
    let mut labels = String::new();
    for (e, (pts, up)) in g.edges.iter().zip(&lay.routes) {
        if e.from == e.to {
            let (x, y) = lay.pos[e.from];
            let n = &g.nodes[e.from];
            let (rx, ty, by) = (x + n.w / 2.0, y - n.h / 4.0, y + n.h / 4.0);
            let _ = writeln!(
                s,
                "<path class=\"edge loop\" d=\"M{rx:.1},{by:.1} C{a:.1},{by:.1} {a:.1},{ty:.1} {rx:.1},{ty:.1}\" \
                 marker-end=\"url(#diagram-arrow)\"/>",
                a = rx + 30.0
            );
            continue;
        }
        let from = &g.nodes[e.from];
        let to = &g.nodes[e.to];
        let mut pts = pts.clone();
        // Leave the source at its bottom (top for a loop) and enter the target at its top
        // (bottom for a loop); loops keep to the right-hand side of both boxes.
        let shift = |w: f64| if *up { w / 4.0 } else { 0.0 };
        if let Some(p) = pts.first_mut() {
            *p = (p.0 + shift(from.w), if *up { p.1 - from.h / 2.0 } else { p.1 + from.h / 2.0 });
        }
        if let Some(p) = pts.last_mut() {
            *p = (p.0 + shift(to.w), if *up { p.1 + to.h / 2.0 } else { p.1 - to.h / 2.0 });
        }
        let mut d = format!("M{:.1},{:.1}", pts[0].0, pts[0].1);
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let my = (a.1 + b.1) / 2.0;
            let _ = write!(d, " C{:.1},{my:.1} {:.1},{my:.1} {:.1},{:.1}", a.0, b.0, b.0, b.1);
        }
        let mut class = String::from("edge");
        if *up {
            class.push_str(" loop");
        }
        if e.timer {
            class.push_str(" timer");
        }
        let dash = if e.timer { " stroke-dasharray=\"5 4\"" } else { "" };
        let _ = writeln!(s, "<path class=\"{class}\" d=\"{d}\"{dash} marker-end=\"url(#diagram-arrow)\"/>");
        if let Some(label) = &e.label {
            // On the first stretch, a third of the way down the gap below the source.
            let (a, b) = (pts[0], pts[1]);
            let t = 0.45;
            let lx = a.0 + (b.0 - a.0) * t;
            let ly = a.1 + (b.1 - a.1) * t;
            let lw = text_width(label, SMALL) + 8.0;
            let _ = writeln!(
                labels,
                "<g class=\"edge-label\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{lw:.1}\" height=\"15\" rx=\"3\" \
                 fill=\"#ffffff\" fill-opacity=\"0.92\"/><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 font-size=\"{SMALL}\" fill=\"#334155\">{}</text></g>",
                lx - lw / 2.0,
                ly - 8.0,
                ly + 3.5,
                esc(label)
            );
        }
    }
    s.push_str("</g>\n");

    s.push_str("<g class=\"steps\">\n");
    for (i, n) in g.nodes.iter().enumerate() {
        let (x, y) = lay.pos[i];
        let mut class = format!("step {}", n.kind);
        let is_current = current.contains(n.id.as_str());
        if is_current {
            class.push_str(" current");
        } else if visited.contains(n.id.as_str()) {
            class.push_str(" visited");
        }
        let (fill, stroke, width) = if is_current {
            ("#fde68a", "#92400e", 3.0)
        } else if visited.contains(n.id.as_str()) {
            ("#e0f2fe", "#334155", 1.2)
        } else {
            match n.shape {
                Shape::Start => ("#334155", "#334155", 1.0),
                Shape::End => ("#f1f5f9", "#334155", 1.2),
                Shape::Decision | Shape::Gate => ("#fefce8", "#334155", 1.2),
                _ => ("#ffffff", "#334155", 1.2),
            }
        };
        let aria = if is_current { " aria-current=\"step\"" } else { "" };
        let _ = write!(s, "<g class=\"{class}\" data-step=\"{}\"{aria}>", esc(&n.id));
        let _ = write!(s, "<title>{}</title>", esc(&n.tooltip));
        let (l, t, w, h) = (x - n.w / 2.0, y - n.h / 2.0, n.w, n.h);
        let paint = format!("fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"");
        match n.shape {
            Shape::Start => {
                let _ = write!(s, "<circle class=\"shape\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"9\" {paint}/>");
            }
            Shape::Task | Shape::Wait => {
                let _ = write!(
                    s,
                    "<rect class=\"shape\" x=\"{l:.1}\" y=\"{t:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"{r}\" {paint}/>",
                    r = if n.shape == Shape::Task { 8 } else { 2 }
                );
            }
            Shape::Auto => {
                let _ = write!(
                    s,
                    "<rect class=\"shape\" x=\"{l:.1}\" y=\"{t:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"2\" {paint}/>\
                     <rect class=\"inner\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"1\" fill=\"none\" \
                     stroke=\"{stroke}\" stroke-width=\"0.8\"/>",
                    l + 4.0,
                    t + 4.0,
                    w - 8.0,
                    h - 8.0
                );
            }
            Shape::End => {
                let _ = write!(
                    s,
                    "<rect class=\"shape\" x=\"{l:.1}\" y=\"{t:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"{:.1}\" {paint}/>",
                    h / 2.0
                );
            }
            Shape::Decision | Shape::Gate => {
                let k = h * 0.3;
                let _ = write!(
                    s,
                    "<polygon class=\"shape\" points=\"{:.1},{y:.1} {:.1},{t:.1} {:.1},{t:.1} {:.1},{y:.1} {:.1},{b:.1} {:.1},{b:.1}\" {paint}/>",
                    l,
                    l + k,
                    l + w - k,
                    l + w,
                    l + w - k,
                    l + k,
                    b = t + h
                );
            }
        }
        let n_lines = n.lines.len() as f64 + if n.sub.is_some() { 1.0 } else { 0.0 };
        let mut ty = y - n_lines * LINE_H / 2.0 + LINE_H * 0.75;
        let text_fill = if n.shape == Shape::Start { "#ffffff" } else { "#0f172a" };
        for line in &n.lines {
            let weight = if is_current { " font-weight=\"700\"" } else { "" };
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" fill=\"{text_fill}\"{weight}>{}</text>",
                esc(line)
            );
            ty += LINE_H;
        }
        if let Some(sub) = &n.sub {
            let _ = write!(
                s,
                "<text class=\"sub\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{SMALL}\" fill=\"#475569\">{}</text>",
                ty - 1.0,
                esc(sub)
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n");
    s.push_str("<g class=\"edge-labels\">\n");
    s.push_str(&labels);
    s.push_str("</g>\n</svg>\n");
    s
}

/// An estimate of how wide a text is drawn: CJK and full-width forms take about a full em,
/// Latin letters a little over half. No font is measured: the server has none, and a close
/// guess with padding reads well.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().map(|c| char_em(c) * size).sum()
}

fn char_em(c: char) -> f64 {
    match c as u32 {
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 => {
            1.0
        }
        0x2190..=0x2BFF => 1.0, // arrows and symbols such as ⏳ ⚙ ■ ∥ are drawn wide
        _ if c.is_ascii_uppercase() => 0.66,
        _ if c == ' ' => 0.3,
        _ if "il.,:;'|!".contains(c) => 0.3,
        _ => 0.56,
    }
}

/// Lines of at most `max` pixels: Latin text breaks at spaces, CJK text between any two
/// characters (that is how Chinese wraps).
fn wrap(text: &str, max: f64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut width = 0.0;
    let mut word = String::new();
    let mut word_w = 0.0;
    let flush_word =
        |line: &mut String, width: &mut f64, word: &mut String, word_w: &mut f64, lines: &mut Vec<String>| {
            if *width + *word_w > max && !line.trim().is_empty() {
                lines.push(line.trim_end().to_string());
                *line = String::new();
                *width = 0.0;
                let trimmed = word.trim_start().to_string();
                *word_w = text_width(&trimmed, FONT);
                *word = trimmed;
            }
            line.push_str(word);
            *width += *word_w;
            word.clear();
            *word_w = 0.0;
        };
    for c in text.chars() {
        let cw = char_em(c) * FONT;
        let cjk = cw >= FONT;
        // Closing punctuation never starts a line (kinsoku): it stays with what it closes.
        let closing = "、。，；：？！）」』》".contains(c);
        if c == ' ' || (cjk && !closing) {
            flush_word(&mut line, &mut width, &mut word, &mut word_w, &mut lines);
        }
        word.push(c);
        word_w += cw;
        if cjk {
            flush_word(&mut line, &mut width, &mut word, &mut word_w, &mut lines);
        }
    }
    flush_word(&mut line, &mut width, &mut word, &mut word_w, &mut lines);
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

fn ellipsize(text: &str, max: f64) -> String {
    if text_width(text, SMALL) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut w = text_width("…", SMALL);
    for c in text.chars() {
        w += char_em(c) * SMALL;
        if w > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
