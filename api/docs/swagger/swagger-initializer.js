// Starts Swagger UI on /docs with the gateway's own document. The page is
// /docs (no trailing slash), so "openapi.json" resolves to /openapi.json,
// also behind a reverse proxy that adds a path prefix.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Never send the document to validator.swagger.io (the default), nor
    // load its badge: the page talks to this gateway only.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    // No top bar: it would invite loading other documents by URL.
    layout: "BaseLayout",
    // Tokens typed into "Authorize" are kept in memory only.
    persistAuthorization: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 1,
  });
};
