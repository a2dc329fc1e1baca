package spec

import "strings"

// APIField rewrites a field path of a task.json (as found in a [Problem] or
// [Warning] about a [Task]) into the names of the v1 API's TaskSpec, for a
// spec that came over the API:
//
//	taskTemplate                        → template_identifier
//	taskTemplate.env[0].value           → inline_template.env[0].value
//	inputs[0].volume_source.host_path   → inputs[0].host_path
//	config.labels.team                  → labels.team
//	resources.limits.memory             → resources.limits.memory_bytes
//	resources.requests.cpu              → resources.requests.cpu_millis
//	resources.limits["nvidia.com/gpu"]  → resources.limits.gpus
//
// Everything else is the same in both spellings and is returned unchanged.
func APIField(field string) string {
	switch {
	case field == "taskTemplate":
		return "template_identifier"
	case strings.HasPrefix(field, "taskTemplate.") || strings.HasPrefix(field, "taskTemplate["):
		field = "inline_template" + strings.TrimPrefix(field, "taskTemplate")
	case field == "config.labels" || strings.HasPrefix(field, "config.labels.") || strings.HasPrefix(field, "config.labels["):
		field = "labels" + strings.TrimPrefix(field, "config.labels")
	}
	field = strings.ReplaceAll(field, ".volume_source.host_path", ".host_path")
	for _, list := range []string{".requests", ".limits"} {
		for from, to := range map[string]string{
			"." + ResourceMemory:      ".memory_bytes",
			"." + ResourceCPU:         ".cpu_millis",
			`["` + ResourceGPU + `"]`: ".gpus",
		} {
			suffix := "resources" + list + from
			if strings.HasSuffix(field, suffix) {
				return strings.TrimSuffix(field, from) + to
			}
		}
	}
	return field
}
