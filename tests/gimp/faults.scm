; The GIMP fault cases (tests/gimp/run-gimp-fault.sh), the same on GIMP 2.10 and 3, after
; prelude-VERSION.scm and cases.scm. Each writes CASE-{before,after}.png and CASE-info.txt for
; dg-gimp-check untouched, plus what the script checks itself:
;   dirty          1 when the failed call left anything on the image's undo stack (the image was
;                  marked clean just before it)
;   undo_enabled   gimp-image-undo-is-enabled after the call
;   undo_balanced  1 when an undo group started and ended from here after the call (nothing half
;                  open in GIMP's bookkeeping for this image)
;   layers_next    the layer count after a second, short call in the same GIMP session (kill)

; booleans come back as #t/#f (GIMP 3) or as TRUE/FALSE integers (GIMP 2.10)
(define (dg-true? v) (and v (not (equal? v 0))))

(define (dg-undo-balanced img)
  (catch 0 (begin (gimp-image-undo-group-start img) (gimp-image-undo-group-end img) 1)))

; The plug-in is killed in the middle of a 30-step run (the script's watcher); then the same
; procedure runs again, 2 steps, on the same image in the same GIMP.
(define (dg-kill-case proc case input outdir prompt folder)
  (let* ((img (dg-load input))
         (layer (dg-layer img))
         (base (string-append outdir "/" case)))
    (dg-select img "rect")
    (dg-save-flat img (string-append base "-before.png"))
    (gimp-image-clean-all img)
    (let* ((n0 (dg-layer-count img))
           (ok (catch #f (begin (dg-call proc img layer prompt 30 "fit" 64 folder) #t)))
           (dirty (dg-b (dg-true? (car (gimp-image-is-dirty img)))))
           (n1 (dg-layer-count img)))
      (dg-save-flat img (string-append base "-after.png"))
      (let ((enabled (dg-b (dg-true? (car (gimp-image-undo-is-enabled img)))))
            (balanced (dg-undo-balanced img))
            (new (dg-call proc img layer prompt 2 "fit" 64 folder)))
        (dg-write-info (string-append base "-info.txt")
          (list (cons "layers_before" n0) (cons "layers_after" n1) (cons "failed" (if ok 0 1))
                (cons "dirty" dirty) (cons "undo_enabled" enabled) (cons "undo_balanced" balanced)
                (cons "layers_next" (dg-layer-count img)) (cons "name_next" (dg-name new))))))
    (gimp-image-delete img)))

; A layer too large for the plug-in's memory (the script limits the plug-in's address space):
; the input scaled up to W × H (nearest neighbour), nothing selected. The flattened image is
; compared at the input's size, scaled back down the same way before and after.
(define (dg-save-scaled img path w h)
  (let ((dup (car (gimp-image-duplicate img))))
    (gimp-image-scale dup w h)
    (dg-save-flat dup path)
    (gimp-image-delete dup)))

(define (dg-oom-case proc case input outdir prompt folder w h)
  (let* ((img (dg-load input))
         (w0 (dg-width (dg-layer img)))
         (h0 (dg-height (dg-layer img)))
         (base (string-append outdir "/" case)))
    (gimp-context-set-interpolation INTERPOLATION-NONE)
    (gimp-image-scale img w h)
    (gimp-selection-none img)
    (dg-save-scaled img (string-append base "-before.png") w0 h0)
    (gimp-image-clean-all img)
    (let* ((n0 (dg-layer-count img))
           (ok (catch #f (begin (dg-call proc img (dg-layer img) prompt 2 "fit" 64 folder) #t)))
           (dirty (dg-b (dg-true? (car (gimp-image-is-dirty img))))))
      (dg-save-scaled img (string-append base "-after.png") w0 h0)
      (dg-write-info (string-append base "-info.txt")
        (list (cons "layers_before" n0) (cons "layers_after" (dg-layer-count img)) (cons "failed" (if ok 0 1))
              (cons "dirty" dirty) (cons "undo_enabled" (dg-b (dg-true? (car (gimp-image-undo-is-enabled img)))))
              (cons "undo_balanced" (dg-undo-balanced img)) (cons "width" (dg-width (dg-layer img))))))
    (gimp-image-delete img)))
