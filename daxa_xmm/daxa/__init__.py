"""DAXA's API: the Archive and XMMPointed (a local archive folder), the DAXA-named plans of each
step, DAXA's records read from disk. A notebook imports them, with the step functions that
run, from ``flows.daxa_steps``."""
