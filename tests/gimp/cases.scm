; The GIMP headless cases, the same on GIMP 2.10 and 3 (after prelude-VERSION.scm).
; Each case loads the input, makes a selection, saves the flattened image and the selection,
; calls one DeepGen procedure and writes what dg-gimp-check needs: CASE-{before,after,sel,mask}.png
; and CASE-info.txt ("key value" lines); CASE-params.txt: the result layer's parameters parasite
; after a save as XCF and a load (the round trip).

(define (dg-write-text path text)
  (let ((p (open-output-file path)))
    (display text p)
    (close-output-port p)))

(define (dg-write-info path pairs)
  (let ((p (open-output-file path)))
    (for-each (lambda (kv) (display (car kv) p) (display " " p) (display (cdr kv) p) (newline p)) pairs)
    (close-output-port p)))

(define (dg-select img kind)
  (cond ((equal? kind "rect") (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 24 40 72 48))
        ((equal? kind "gray") (gimp-image-convert-grayscale img) (dg-select img "rect"))
        ((equal? kind "indexed")
         (gimp-image-convert-indexed img CONVERT-DITHER-NONE CONVERT-PALETTE-GENERATE 64 FALSE FALSE "")
         (dg-select img "rect"))
        ((equal? kind "ellipse")
         (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 60 20 80 64)
         (gimp-selection-feather img 12))
        (else (gimp-selection-none img))))

(define (dg-b x) (if x 1 0))

; one successful call; proc is the procedure itself
(define (dg-case proc case kind input outdir prompt folder)
  (let* ((img (dg-load input))
         (layer (dg-layer img))
         (base (string-append outdir "/" case)))
    (dg-select img kind)
    (dg-prepare img layer)
    (dg-save-flat img (string-append base "-before.png"))
    (if (dg-has-selection img) (dg-save-selection img (string-append base "-sel.png")))
    (let* ((n0 (dg-layer-count img))
           (has-sel (dg-has-selection img))
           (new (dg-call proc img layer prompt 2 "fit" 128 folder))
           (off (dg-offsets new)))
      ; the layer mask, turned back into a selection and saved like the selection was: the
      ; same export path, so the two compare level for level (a mask exported as a layer
      ; goes through another colour conversion than a selection channel)
      (if (dg-has-mask new)
          (begin (gimp-image-select-item img CHANNEL-OP-REPLACE (dg-mask new))
                 (dg-save-selection img (string-append base "-mask.png"))))
      (dg-save-flat img (string-append base "-after.png"))
      (dg-write-info (string-append base "-info.txt")
        (list (cons "layers_before" n0) (cons "layers_after" (dg-layer-count img))
              (cons "name" (dg-name new)) (cons "offset_x" (car off)) (cons "offset_y" (cadr off))
              (cons "width" (dg-width new)) (cons "height" (dg-height new))
              (cons "has_selection" (dg-b has-sel)) (cons "has_mask" (dg-b (dg-has-mask new)))))
      (dg-save-xcf img (string-append base ".xcf"))
      (let ((img2 (dg-load (string-append base ".xcf"))))
        (dg-write-text (string-append base "-params.txt")
                       (dg-parasite-text (dg-layer img2) "deepgen-parameters"))
        (gimp-image-delete img2)))
    (gimp-image-delete img)))

; a call that must fail (bad model folder) and leave the image as it was
(define (dg-fail-case proc case kind input outdir prompt folder)
  (let* ((img (dg-load input))
         (layer (dg-layer img))
         (base (string-append outdir "/" case)))
    (dg-select img kind)
    (dg-save-flat img (string-append base "-before.png"))
    (let* ((n0 (dg-layer-count img))
           (ok (catch #f (begin (dg-call proc img layer prompt 2 "fit" 128 folder) #t))))
      (dg-save-flat img (string-append base "-after.png"))
      (dg-write-info (string-append base "-info.txt")
        (list (cons "layers_before" n0) (cons "layers_after" (dg-layer-count img))
              (cons "failed" (if ok 0 1)))))
    (gimp-image-delete img)))
