// Starts Swagger UI on /docs with this server's OpenAPI document (kept out of the page so
// the page's Content-Security-Policy can forbid inline script).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
