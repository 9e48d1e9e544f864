// Starts ReDoc on /redoc with the gateway's own document. The page is
// /redoc (no trailing slash), so "openapi.json" resolves to /openapi.json.
Redoc.init(
  "openapi.json",
  {
    expandResponses: "200,201,202",
    jsonSampleExpandLevel: 3,
    pathInMiddlePanel: true,
    sortPropsAlphabetically: false,
    // System fonts: nothing is fetched from a font service.
    theme: {
      typography: {
        fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        headings: { fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" },
        code: { fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace" },
      },
    },
  },
  document.getElementById("redoc-container"),
);
