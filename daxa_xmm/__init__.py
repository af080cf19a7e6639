"""daxa-xmm's core: XMM-Newton ODFs to science products with SAS, without Prefect.

The public API, by where it lives (nothing is imported here: the SAS stand-in starts a
Python process per call and imports ``daxa_xmm.standin``, which must stay quick):

- settings: :class:`daxa_xmm.config.ProcessingConfig` (every knob, one field each),
  :func:`daxa_xmm.config.load_config`; the archive's layout: :class:`daxa_xmm.layout.ArchiveLayout`;
- ``daxa_xmm.odf``: the ODF's summary (:func:`daxa_xmm.odf.summary.read_odf_summary`) and
  which sub-exposures are processable (:mod:`daxa_xmm.odf.selection`);
- ``daxa_xmm.sas``: SAS's set-up (:func:`daxa_xmm.sas.environment.detect_sas`), one call
  (:class:`daxa_xmm.sas.calls.SasCall`) and its runner (:func:`daxa_xmm.sas.runner.run_sas`);
- ``daxa_xmm.steps``: each SAS step's settings model and argv builder;
- ``daxa_xmm.pipeline``: the table of steps (:data:`daxa_xmm.pipeline.stages.PIPELINE`), one
  observation's run (:func:`daxa_xmm.pipeline.observation_run.run_observation`), the
  manifest (:class:`daxa_xmm.pipeline.manifest_store.ManifestStore`);
- ``daxa_xmm.daxa``: DAXA's Archive and records; ``daxa_xmm.report``: the archive report;
- ``daxa_xmm.standin``: the SAS stand-in and the synthetic archive generator.
"""
