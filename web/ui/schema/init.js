// The /schema page's API explorer: Scalar's standalone bundle, served by Mailmark itself.
// Everything comes from this server: no fonts, proxy or telemetry elsewhere.
(function () {
  var mount = document.getElementById("schema-explorer");
  if (!mount || !window.Scalar) return;
  window.Scalar.createApiReference(mount, {
    url: mount.getAttribute("data-openapi-url"),
    withDefaultFonts: false,
    hideClientButton: false,
    telemetry: false,
    agent: { disabled: true },
    mcp: { disabled: true },
    showDeveloperTools: "never",
    hideDarkModeToggle: false,
    defaultOpenAllTags: false,
  });
})();
