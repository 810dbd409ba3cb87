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
    // Scalar's themes draw method names and secondary text at 1.7-4.4:1 against their
    // backgrounds; these shades keep its hues at WCAG AA contrast (4.5:1 and more).
    customCss:
      ".light-mode{--scalar-color-green:#1a7f37;--scalar-color-blue:#0a58ca;" +
      "--scalar-color-orange:#a04a00;--scalar-color-yellow:#7a5c00;--scalar-color-red:#c21f1f;" +
      "--scalar-color-purple:#6f42c1;--scalar-color-3:#5c5c5c}" +
      ".dark-mode{--scalar-color-red:#ff6b6b;--scalar-color-3:#9a9a9a}",
  });
})();
