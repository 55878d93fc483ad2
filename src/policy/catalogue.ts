// Every tool of the pinned forgejo-mcp (v2.34.1, 141 tools), read from its `operation/` packages:
// what each does decides its class, and the class gives the MCP annotations the broker adds to
// tools/list. forgejo-mcp declares no annotations itself. A tool missing here (a newer
// forgejo-mcp) is treated as destructive until it is classified; test/policy/catalogue-real.test.ts
// compares this table with the real binary's tools/list.

/** read: no change anywhere. write: creates or edits, recoverable. destructive: deletes, merges,
 * publishes releases, runs workflows, configures webhooks, or changes who may do what. */
export type ToolClass = 'read' | 'write' | 'destructive';

export const TOOL_CLASSES: readonly ToolClass[] = ['read', 'write', 'destructive'];

export type ToolAnnotations = {
  title: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
};

export type CatalogueEntry = { class: ToolClass; annotations: ToolAnnotations };

export const FORGEJO_MCP_VERSION = '2.34.1';

/** Flags beyond the class: `i` the call can be repeated with no further effect, `o` it reaches past
 * Forgejo (a webhook delivery to any URL, a workflow run). Reads are idempotent and closed. */
type Flags = '' | 'i' | 'o' | 'io';

type Row = readonly [name: string, cls: ToolClass, title: string, flags?: Flags];

const R = 'read';
const W = 'write';
const D = 'destructive';

const ROWS: readonly Row[] = [
  // server
  ['get_forgejo_mcp_server_version', R, 'Get the MCP server version'],
  // user and notifications
  ['get_my_user_info', R, 'Get my user info'],
  ['check_notifications', R, 'Check notifications'],
  ['get_notification_thread', R, 'Get a notification thread'],
  ['mark_notification_read', W, 'Mark a notification read', 'i'],
  ['mark_all_notifications_read', W, 'Mark all notifications read', 'i'],
  ['list_repo_notifications', R, 'List repository notifications'],
  ['mark_repo_notifications_read', W, 'Mark repository notifications read', 'i'],
  // search
  ['search_users', R, 'Search users'],
  ['search_repos', R, 'Search repositories'],
  ['search_org_teams', R, 'Search organization teams'],
  // repositories, branches, files, commits
  ['list_my_repos', R, 'List my repositories'],
  ['create_repo', W, 'Create a repository'],
  ['fork_repo', W, 'Fork a repository'],
  ['list_branches', R, 'List branches'],
  ['create_branch', W, 'Create a branch'],
  ['delete_branch', D, 'Delete a branch', 'i'],
  ['get_file_content', R, 'Get file content'],
  ['create_file', W, 'Create a file'],
  ['update_file', W, 'Update a file'],
  ['delete_file', D, 'Delete a file'],
  ['list_repo_commits', R, 'List commits'],
  ['list_repo_contents', R, 'List directory contents'],
  ['get_repo_tree', R, 'Get the repository tree'],
  // branch protection (who may push and merge)
  ['list_branch_protections', R, 'List branch protections'],
  ['get_branch_protection', R, 'Get a branch protection'],
  ['create_branch_protection', D, 'Create a branch protection'],
  ['edit_branch_protection', D, 'Edit a branch protection', 'i'],
  ['delete_branch_protection', D, 'Delete a branch protection', 'i'],
  // webhooks: deliveries go to any URL
  ['list_repo_hooks', R, 'List webhooks'],
  ['get_repo_hook', R, 'Get a webhook'],
  ['create_repo_hook', D, 'Create a webhook', 'o'],
  ['edit_repo_hook', D, 'Edit a webhook', 'io'],
  ['delete_repo_hook', D, 'Delete a webhook', 'i'],
  ['test_repo_hook', D, 'Send a test webhook delivery', 'o'],
  // issues
  ['list_repo_issues', R, 'List issues'],
  ['search_issues', R, 'Search issues'],
  ['get_issue_by_index', R, 'Get an issue'],
  ['create_issue', W, 'Create an issue'],
  ['update_issue', W, 'Update an issue', 'i'],
  ['issue_state_change', W, 'Open or close an issue', 'i'],
  ['add_issue_labels', W, 'Add labels to an issue', 'i'],
  ['remove_issue_labels', W, 'Remove labels from an issue', 'i'],
  ['list_issue_comments', R, 'List comments'],
  ['get_issue_comment', R, 'Get a comment'],
  ['create_issue_comment', W, 'Comment on an issue'],
  ['edit_issue_comment', W, 'Edit a comment', 'i'],
  ['delete_issue_comment', D, 'Delete a comment', 'i'],
  ['list_repo_milestones', R, 'List milestones'],
  ['list_issue_dependencies', R, 'List issue dependencies'],
  ['list_issue_dependents', R, 'List dependent issues'],
  ['add_issue_dependency', W, 'Add an issue dependency', 'i'],
  ['remove_issue_dependency', W, 'Remove an issue dependency', 'i'],
  // labels
  ['list_repo_labels', R, 'List repository labels'],
  ['get_repo_label', R, 'Get a repository label'],
  ['create_repo_label', W, 'Create a repository label'],
  ['edit_repo_label', W, 'Edit a repository label', 'i'],
  ['delete_repo_label', D, 'Delete a repository label', 'i'],
  ['list_org_labels', R, 'List organization labels'],
  ['get_org_label', R, 'Get an organization label'],
  ['create_org_label', W, 'Create an organization label'],
  ['edit_org_label', W, 'Edit an organization label', 'i'],
  ['delete_org_label', D, 'Delete an organization label', 'i'],
  // pull requests and reviews
  ['list_repo_pull_requests', R, 'List pull requests'],
  ['get_pull_request_by_index', R, 'Get a pull request'],
  ['list_pull_request_files', R, 'List changed files of a pull request'],
  ['get_pull_request_diff', R, 'Get a pull request diff'],
  ['create_pull_request', W, 'Create a pull request'],
  ['update_pull_request', W, 'Update a pull request', 'i'],
  ['merge_pull_request', D, 'Merge a pull request'],
  ['list_pull_reviews', R, 'List reviews'],
  ['get_pull_review', R, 'Get a review'],
  ['list_pull_review_comments', R, 'List review comments'],
  ['create_pull_review', W, 'Review a pull request'],
  ['submit_pull_review', W, 'Submit a pending review'],
  ['dismiss_pull_review', W, 'Dismiss a review', 'i'],
  ['delete_pull_review', D, 'Delete a pending review', 'i'],
  ['create_review_requests', W, 'Request reviews', 'i'],
  ['delete_review_requests', W, 'Cancel review requests', 'i'],
  // actions: a dispatched workflow runs whatever the repository's CI does
  ['dispatch_workflow', D, 'Run a workflow', 'o'],
  ['list_workflow_runs', R, 'List workflow runs'],
  ['get_workflow_run', R, 'Get a workflow run'],
  ['list_action_run_jobs', R, 'List the jobs of a run'],
  ['get_action_job_logs', R, 'Read a job log'],
  // organizations, members and teams (who may do what)
  ['list_my_orgs', R, 'List my organizations'],
  ['list_user_orgs', R, "List a user's organizations"],
  ['get_org', R, 'Get an organization'],
  ['create_org', D, 'Create an organization'],
  ['edit_org', D, 'Edit an organization', 'i'],
  ['delete_org', D, 'Delete an organization', 'i'],
  ['list_org_members', R, 'List organization members'],
  ['check_org_membership', R, 'Check organization membership'],
  ['remove_org_member', D, 'Remove an organization member', 'i'],
  ['list_org_teams', R, 'List teams'],
  ['create_org_team', D, 'Create a team'],
  ['add_team_member', D, 'Add a team member', 'i'],
  ['remove_team_member', D, 'Remove a team member', 'i'],
  ['add_team_repo', D, 'Give a team a repository', 'i'],
  ['remove_team_repo', D, 'Take a repository from a team', 'i'],
  // time tracking
  ['list_issue_tracked_times', R, 'List tracked time of an issue'],
  ['list_repo_tracked_times', R, 'List tracked time of a repository'],
  ['list_my_tracked_times', R, 'List my tracked time'],
  ['add_issue_time', W, 'Log time on an issue'],
  ['reset_issue_time', D, 'Delete all tracked time of an issue', 'i'],
  ['delete_issue_time_entry', D, 'Delete a tracked time entry', 'i'],
  ['start_issue_stopwatch', W, 'Start a stopwatch'],
  ['stop_issue_stopwatch', W, 'Stop a stopwatch'],
  ['cancel_issue_stopwatch', W, 'Cancel a stopwatch'],
  ['list_my_stopwatches', R, 'List my stopwatches'],
  // issue and comment attachments
  ['list_issue_attachments', R, 'List issue attachments'],
  ['get_issue_attachment', R, 'Get an issue attachment'],
  ['download_issue_attachment', R, 'Download an issue attachment'],
  ['create_issue_attachment', W, 'Attach a file to an issue'],
  ['edit_issue_attachment', W, 'Rename an issue attachment', 'i'],
  ['delete_issue_attachment', D, 'Delete an issue attachment', 'i'],
  ['list_comment_attachments', R, 'List comment attachments'],
  ['get_comment_attachment', R, 'Get a comment attachment'],
  ['download_comment_attachment', R, 'Download a comment attachment'],
  ['create_comment_attachment', W, 'Attach a file to a comment'],
  ['edit_comment_attachment', W, 'Rename a comment attachment', 'i'],
  ['delete_comment_attachment', D, 'Delete a comment attachment', 'i'],
  // releases: publishing is shipping
  ['list_releases', R, 'List releases'],
  ['get_release_by_id', R, 'Get a release'],
  ['get_release_by_tag', R, 'Get a release by tag'],
  ['get_latest_release', R, 'Get the latest release'],
  ['create_release', D, 'Create a release'],
  ['edit_release', D, 'Edit a release', 'i'],
  ['delete_release', D, 'Delete a release', 'i'],
  ['delete_release_by_tag', D, 'Delete a release by tag', 'i'],
  ['list_release_attachments', R, 'List release assets'],
  ['get_release_attachment', R, 'Get a release asset'],
  ['download_release_attachment', R, 'Download a release asset'],
  ['create_release_attachment', D, 'Upload a release asset'],
  ['edit_release_attachment', D, 'Rename a release asset', 'i'],
  ['delete_release_attachment', D, 'Delete a release asset', 'i'],
  // wiki
  ['list_wiki_pages', R, 'List wiki pages'],
  ['get_wiki_page', R, 'Get a wiki page'],
  ['get_wiki_revisions', R, 'List wiki page revisions'],
  ['create_wiki_page', W, 'Create a wiki page'],
  ['update_wiki_page', W, 'Update a wiki page', 'i'],
  ['delete_wiki_page', D, 'Delete a wiki page', 'i'],
];

function entry(cls: ToolClass, title: string, flags: Flags = ''): CatalogueEntry {
  return {
    class: cls,
    annotations: {
      title,
      readOnlyHint: cls === 'read',
      destructiveHint: cls === 'destructive',
      idempotentHint: cls === 'read' || flags.includes('i'),
      openWorldHint: flags.includes('o'),
    },
  };
}

export const CATALOGUE: ReadonlyMap<string, CatalogueEntry> = new Map(
  ROWS.map(([name, cls, title, flags]) => [name, entry(cls, title, flags)]),
);

/** What a tool the table does not know is taken to be: the most dangerous class, no promises. */
export function classify(name: string): CatalogueEntry {
  return (
    CATALOGUE.get(name) ?? {
      class: 'destructive',
      annotations: {
        title: name,
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: true,
      },
    }
  );
}

/** How a child's tools/list differs from the table: tools it has that the table lacks (treated
 * as destructive until classified), and tools of the table it does not have. */
export function catalogueDrift(
  listed: Iterable<string>,
  table: ReadonlyMap<string, CatalogueEntry> = CATALOGUE,
): { unclassified: string[]; absent: string[] } {
  const names = new Set(listed);
  return {
    unclassified: [...names].filter((n) => !table.has(n)).sort(),
    absent: [...table.keys()].filter((n) => !names.has(n)).sort(),
  };
}
