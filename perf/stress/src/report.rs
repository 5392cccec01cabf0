//! A run as pictures: one self-contained HTML page (inline SVG, no script,
//! no external file) with line charts over time and a table, so a run can
//! be looked at in any browser and attached to a note as it is.

use std::fmt::Write;

/// Colours for successive series (colour-blind safe, Okabe-Ito).
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// One line of a chart: its name and its (x, y) points, x ascending.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart over time: x in seconds since the run began, phase
/// boundaries drawn as dashed vertical lines with their names.
pub fn line_chart(title: &str, y_unit: &str, series: &[Series], marks: &[(&str, f64)]) -> String {
    xy_chart(title, "s", y_unit, series, marks)
}

/// A line chart with `x_unit` on the x axis (ticks read "<x> <x_unit>").
pub fn xy_chart(
    title: &str,
    x_unit: &str,
    y_unit: &str,
    series: &[Series],
    marks: &[(&str, f64)],
) -> String {
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(marks.iter().map(|m| m.1))
        .fold(1.0_f64, f64::max);
    let y_max = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| LEFT + v / x_max * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y0:.1}" y2="{y0:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            short(v),
            y0 = y(v)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(y_unit)
    );
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        // The last tick ends at the plot's edge rather than past it.
        let anchor = if i == 5 { "end" } else { "middle" };
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="{anchor}">{:.0} {}</text>"#,
            x(v),
            HEIGHT - 14.0,
            v,
            escape(x_unit)
        );
    }
    for (name, at) in marks {
        // A name near the right edge goes left of its line.
        let (label_x, anchor) = if x(*at) > WIDTH - RIGHT - 80.0 {
            (x(*at) - 3.0, "end")
        } else {
            (x(*at) + 3.0, "start")
        };
        let _ = write!(
            svg,
            r##"<line x1="{x0:.1}" x2="{x0:.1}" y1="{TOP}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"/><text x="{label_x:.1}" y="{}" fill="#555" text-anchor="{anchor}">{}</text>"##,
            TOP + plot_h,
            TOP + 10.0,
            escape(name),
            x0 = x(*at)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{}">{}</text>"#,
            LEFT + 10.0 + 130.0 * i as f64,
            HEIGHT - 11.0,
            LEFT + 24.0 + 130.0 * i as f64,
            HEIGHT - 2.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The page: a title, a line of context, the charts, then a table.
pub fn page(title: &str, context: &str, charts: &[String], table: &[Vec<String>]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}</style></head><body>\
         <h1>{}</h1><p>{}</p>",
        escape(title),
        escape(title),
        escape(context)
    );
    for chart in charts {
        let _ = write!(html, "<div>{chart}</div>");
    }
    if let Some((head, rows)) = table.split_first() {
        html.push_str("<table><tr>");
        for cell in head {
            let _ = write!(html, "<th>{}</th>", escape(cell));
        }
        html.push_str("</tr>");
        for row in rows {
            html.push_str("<tr>");
            for cell in row {
                let _ = write!(html, "<td>{}</td>", escape(cell));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>\n");
    html
}

/// The smallest of 1, 2 or 5 × a power of ten at or above `v` (an axis top).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn short(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(1234.0), 2000.0);
    }

    #[test]
    fn a_page_holds_its_charts_and_table_escaped() {
        let chart = line_chart(
            "requests <per second>",
            "req/s",
            &[Series {
                name: "2xx".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0)],
            }],
            &[("burst", 0.5)],
        );
        assert!(chart.starts_with("<svg") && chart.ends_with("</svg>"));
        assert!(chart.contains("&lt;per second&gt;") && chart.contains("<polyline"));
        assert!(chart.contains(">burst</text>"));
        let html = page(
            "run",
            "a & b",
            &[chart],
            &[vec!["status".into()], vec!["201".into()]],
        );
        assert!(html.contains("a &amp; b") && html.contains("<td>201</td>"));
        assert_eq!(html.matches("<svg").count(), 1);
    }
}
