// Package spec owns pcnode's reading of Kaapana's two file formats, the
// processing-container.json an image carries and the task.json a caller
// submits, and everything that turns them into a runnable task instance:
// parsing, validation, merging a task with its template, resource quantities
// and memory scale rules.
//
// The package is pure: it knows nothing of containerd, gRPC or bbolt, and its
// only I/O is listing directories and reading file sizes through [SizeFS] when
// scale rules are measured. The daemon converts its types to and from the v1
// API (TaskSpec, TaskInstance, ScaleResult, Problem); the shapes are kept
// parallel to those messages for that reason.
//
// # Basics
//
// A processing-container.json is read with [ParseProcessingContainer] and
// checked with [ProcessingContainer.Validate]. A task.json is read with
// [ParseTask], which substitutes `{{ env.NAME }}` placeholders through a
// [LookupEnv]; a [Task] can also be built directly in Go (for a spec that came
// over the API) and checked with [Task.Validate]. [Merge] binds a task to its
// template without touching the filesystem; [Resolve] does the same and then
// measures scale rules, returning the [Instance] that will run.
//
// Every check collects all problems rather than stopping at the first. A
// [Problem] names the field by a JSON path in the file's own spelling
// ("templates[1].inputs[0].mounted_path", "inputs[0].volume_source.host_path",
// `resources.limits["nvidia.com/gpu"]`); [APIField] rewrites a task path to
// the v1 API's field names. [Problems] is an error that wraps [ErrInvalid].
// Fields pcnode does not know or ignores are reported as [Warning]s, never
// dropped silently.
//
// # Limits
//
// Every check also holds what it reads to a [Limits]: list lengths (env,
// choices, channels, arguments, labels), pattern sizes and the compiled
// size of a target_regex, the instance's argv and env as execve counts them
// (and each string to the kernel's [MaxArgStrlen]), and a floor and ceiling
// for memory and CPU. The package functions use [DefaultLimits]; the
// methods of [Limits] take a node's own. An oversized list is reported once,
// without its entries being looked at. Names and paths must pass
// [CheckName]: no control, bidirectional or invisible format characters.
// A scale rule whose product passes [MaxMemoryBytes] is a problem, not a
// saturated value.
//
// # Kaapana semantics, and where pcnode differs on purpose
//
// Merging follows Kaapana's create_task_instance: env by name (task values
// override, new names are appended after the template's), channels by name,
// the task's command replaces the template's. The differences:
//
//   - Kaapana silently ignores a task channel the template lacks and leaves a
//     template channel unbound; both are problems here, as are an unknown
//     template identifier and an invalid inline template.
//   - Kaapana replaces the whole resources object when a task gives one;
//     pcnode overrides key by key (requests.memory, limits.cpu, ...).
//   - Templates may declare env `type`, `choices` and `adjustable` (the
//     Kaapana developer guide recommends them, its models lack the first and
//     last); overrides outside choices, of the wrong type, or of a
//     non-adjustable variable (to a different value) are problems.
//   - A task output bound to the same host directory as another channel, or
//     inside or around one, is a problem: outputs are emptied before a run.
//   - A mounted_path under /proc, /sys or /dev is a problem.
//   - As in Kubernetes, a request left unset takes the value of its limit.
//
// Scale rules follow Kaapana's Docker runner: the rule's memory value is
// scale_factor × the measured size, with no headroom added (the Kubernetes
// runner adds 10% but, comparing an enum to a string, never applies a rule at
// all; pcnode always applies it). Measuring matches Kaapana's
// resources.py on the same directory tree, except that:
//
//   - symlinks are never followed, neither to files (Kaapana counts the
//     target's size) nor to directories, including the channel root and any
//     component of target_dir;
//   - max_item_sum over a channel without item directories measures 0
//     (Kaapana raises an error);
//   - target_regex is Go (RE2) syntax, which lacks look-around and
//     back-references; target_glob is Go path.Match syntax per path
//     segment, where `\` escapes and `[!...]` is read as `[^...]`;
//   - both are capped in size ([Limits]), and a target_regex in the size of
//     its compiled program.
//
// # Caveats
//
// Placeholder substitution happens inside decoded JSON strings, so a value
// cannot inject JSON structure, but a placeholder cannot stand for a number
// either (Kaapana renders the raw text with Jinja first). Only `{{ env.NAME }}`
// is supported; any other `{{ ... }}` is a problem. Host-path overlap checks
// are lexical; the daemon must resolve symlinks itself before mounting.
package spec
