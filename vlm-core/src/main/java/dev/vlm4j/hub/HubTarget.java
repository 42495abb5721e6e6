package dev.vlm4j.hub;

/** What a Hub call is about, so that every error it raises names the repo, the revision and the file. */
record HubTarget(RepoId repo, String revision, String file) {

    static HubTarget of(RepoId repo, String revision) {
        return new HubTarget(repo, revision, null);
    }

    HubTarget file(String name) {
        return new HubTarget(repo, revision, name);
    }

    HubException error(HubException.Kind kind, String detail, Throwable cause) {
        return new HubException(kind, repo.id(), revision, file, detail, cause);
    }

    HubException error(HubException.Kind kind, String detail) {
        return error(kind, detail, null);
    }
}
