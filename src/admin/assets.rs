//! The dashboard's files, built into the binary: its script and styles, and the plotting
//! library it draws with (uPlot 1.6.32, MIT, vendored unchanged from the npm package; its
//! licence is `assets/uPlot.LICENSE`). Served under `/_uringd/assets/` with the same bearer
//! token rule as every admin page, so the dashboard loads nothing from anywhere else.

#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub static ASSETS: [Asset; 4] = [
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/dashboard.js"),
    },
    Asset {
        name: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/dashboard.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/uPlot.min.css"),
    },
];

/// The asset with this exact name.
pub fn find(name: &[u8]) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name.as_bytes() == name)
}
