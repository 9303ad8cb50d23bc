//! Line charts as SVG, written by hand: a title, axes with ticks, one polyline per
//! series and a legend. NaN values are gaps.

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"];

pub fn line_chart(title: &str, x_unit: &str, y_unit: &str, xs: &[f64], series: &[(&str, Vec<f64>)]) -> String {
    let finite = |v: &&f64| v.is_finite();
    let x_max = xs.iter().filter(finite).fold(1.0f64, |a, b| a.max(*b));
    let y_max = series.iter().flat_map(|(_, ys)| ys.iter()).filter(finite).fold(0.0f64, |a, b| a.max(*b));
    let y_max = nice(if y_max <= 0.0 { 1.0 } else { y_max * 1.05 });
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + x / x_max * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_max * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    for i in 0..=5 {
        let (xv, yv) = (x_max * f64::from(i) / 5.0, y_max * f64::from(i) / 5.0);
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LEFT + plot_w,
            py(yv),
            py(yv),
            LEFT - 6.0,
            py(yv) + 4.0,
            label(yv)
        ));
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n", px(xv), TOP + plot_h + 18.0, label(xv)));
    }
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"black\"/>\n<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n",
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        TOP + plot_h
    ));
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">{}</text>\n",
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        escape(x_unit),
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(y_unit)
    ));
    for (i, (name, ys)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut path = String::new();
        let mut pen_down = false;
        for (x, y) in xs.iter().zip(ys) {
            if !y.is_finite() {
                pen_down = false;
                continue;
            }
            path.push_str(&format!("{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, px(*x), py(*y)));
            pen_down = true;
        }
        svg.push_str(&format!("<path d=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\n", path.trim_end()));
        let ly = TOP + 10.0 + 20.0 * i as f64;
        svg.push_str(&format!(
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            WIDTH - RIGHT + 15.0,
            WIDTH - RIGHT + 40.0,
            WIDTH - RIGHT + 46.0,
            ly + 4.0,
            escape(name)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten).
fn nice(v: f64) -> f64 {
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|c| *c >= v).unwrap_or(v)
}

fn label(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() { format!("{v:.0}") } else { format!("{v:.1}") }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chart_with_gaps() {
        let svg = super::line_chart("T <1>", "s", "ms", &[0.0, 1.0, 2.0], &[("p99", vec![1.0, f64::NAN, 3.0])]);
        assert!(svg.starts_with("<svg") && svg.contains("T &lt;1&gt;") && svg.matches(" M").count() + svg.matches("\"M").count() == 2);
        assert_eq!(super::nice(7.3), 10.0);
        assert_eq!(super::nice(0.42), 0.5);
    }
}
