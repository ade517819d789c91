"""Pure API machinery: kinds, defaulting, validation, selectors, printers, patches. No I/O."""
