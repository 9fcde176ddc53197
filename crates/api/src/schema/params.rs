//! The parameters of kube-apiserver's REST operations, as its OpenAPI documents list them.
//! `fieldValidation` must be among the operation-level parameters of every PATCH operation:
//! kubectl's `QueryParamVerifierV3` looks only there before sending `fieldValidation=Strict`.

use std::borrow::Cow;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// One parameter of an operation or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: Cow<'static, str>,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: In::Query,
        ty,
        description: Cow::Borrowed(description),
    }
}

const fn path(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: In::Path,
        ty: "string",
        description: Cow::Borrowed(description),
    }
}

pub const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
);
pub const NAMESPACE: Param = path(
    "namespace",
    "object name and auth scope, such as for teams and projects",
);
pub const NAME: Param = path("name", "name of the object");
pub const PROXY_PATH: Param = path("path", "path to the resource");

pub const ALLOW_WATCH_BOOKMARKS: Param = query(
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may ignore this flag and send bookmarks at their discretion. Ignored when not watching.",
);
pub const CONTINUE: Param = query(
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server: the value the server returned in the list metadata of the previous page. Not supported when watch is true.",
);
pub const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
pub const LABEL_SELECTOR: Param = query(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
pub const LIMIT: Param = query(
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call. If more items exist, the server sets the `continue` field on the list metadata. Not supported if watch is true.",
);
pub const RESOURCE_VERSION: Param = query(
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
pub const RESOURCE_VERSION_MATCH: Param = query(
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
pub const SEND_INITIAL_EVENTS: Param = query(
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`: the watch stream then begins with synthetic events for the current objects, followed by a \"Bookmark\" event annotated `\"k8s.io/initial-events-end\": \"true\"`. Requires resourceVersionMatch.",
);
pub const TIMEOUT_SECONDS: Param = query(
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
pub const WATCH: Param = query(
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);
pub const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
pub const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters. Required for apply requests (application/apply-patch).",
);
pub const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: unknown fields are silently dropped and all but the last duplicate field are ignored. - Warn: a warning is sent for each unknown field that is dropped and for each duplicate field encountered; the request still succeeds. This is the default. - Strict: the request fails with a BadRequest error listing all unknown and duplicate fields.",
);
pub const FORCE: Param = query(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);
pub const GRACE_PERIOD_SECONDS: Param = query(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If unset, the default grace period for the type is used.",
);
pub const IGNORE_STORE_READ_ERROR: Param = query(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
);
pub const ORPHAN_DEPENDENTS: Param = query(
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.",
);
pub const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
);

pub const LIST_PARAMS: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
pub const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
pub const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
pub const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
pub const DELETE_COLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];

pub const CONTAINER: Param = query("container", "string", "The container to use.");
pub const STDIN: Param = query(
    "stdin",
    "boolean",
    "Redirect the standard input stream of the pod for this call. Defaults to false.",
);
pub const STDOUT: Param = query(
    "stdout",
    "boolean",
    "Redirect the standard output stream of the pod for this call.",
);
pub const STDERR: Param = query(
    "stderr",
    "boolean",
    "Redirect the standard error stream of the pod for this call.",
);
pub const TTY: Param = query(
    "tty",
    "boolean",
    "Allocate a terminal for this call. Defaults to false.",
);
pub const EXEC_PARAMS: &[Param] = &[
    query(
        "command",
        "string",
        "Command is the remote command to execute. argv array. Not executed within a shell.",
    ),
    CONTAINER,
    STDERR,
    STDIN,
    STDOUT,
    TTY,
];
pub const ATTACH_PARAMS: &[Param] = &[CONTAINER, STDERR, STDIN, STDOUT, TTY];
pub const PORTFORWARD_PARAMS: &[Param] = &[query("ports", "integer", "List of ports to forward.")];
pub const PROXY_PARAMS: &[Param] = &[query(
    "path",
    "string",
    "Path is the URL path to use for the current proxy request.",
)];
pub const LOG_PARAMS: &[Param] = &[
    query("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod."),
    query("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
    query("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to."),
    query("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log output."),
    query("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
    query("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs."),
    query("stream", "string", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". Defaults to \"All\"."),
    query("tailLines", "integer", "If set, the number of lines from the end of the logs to show."),
    query("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
];
