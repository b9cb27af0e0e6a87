"""The ground floor: the vocabulary every stage shares, importing no stage and no configuration.

* `vocabulary`: the enums of the domain (calendars, asset classes, directions);
* `calendars`: sessions of a calendar, counted and stepped;
* `panel`: the aligned returns panel (dates × symbols, NaN where a symbol has no session);
* `atoms`: strategy atoms (asset, logic, direction) and their returns and weights;
* `frozen`: immutable configuration objects with a content id;
* `files` and `frame_files`: files and Parquet frame directories written whole or not at all;
* `hashing`: content hashes of frames; `identifiers`: run ids and path segments; `clock`: UTC now;
* `threads`: BLAS pinned to one thread.
"""
