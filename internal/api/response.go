package api

// ResponseJSON decodes a device's result plist (already accepted by the
// MDM decoder) for display as JSON, as GET /v1/commands/{uuid} shows it:
// data as base64, dates as RFC 3339, the routing identifiers left out.
// It returns nil when raw is not a dictionary plist.
func ResponseJSON(raw []byte) map[string]any { return responseOf(raw) }
