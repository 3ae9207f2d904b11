"""The report of a comparison (`report`): its statistics (`significance`), data-size curves (`curves`) and
figures (`plots`)."""
