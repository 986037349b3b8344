"""Running task functions elsewhere: the remote-runner protocol and the run's steps over it."""
