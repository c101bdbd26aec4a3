"""The Pulumi program of acs-call-recording: typed config, one component per concern."""
