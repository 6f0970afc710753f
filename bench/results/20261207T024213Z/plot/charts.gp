# gnuplot plot/charts.gp, run in the results directory (bench/report.py)
set encoding utf8
set terminal pngcairo size 1500,480 font 'sans,10'
set grid
set key top left
set logscale y
set output 'chan-mpsc.png'
set multiplot layout 1,3 title 'chan/mpsc: ns per value vs threads per side (t1 = spsc; lower is better)'
set logscale x 2
set xlabel 'producers (1 consumer)'
set ylabel 'ns/op'
set xrange [0.8:20]
set title 'capacity 1'
plot 'plot/mpsc-cap1-libgocc.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'libgocc', 'plot/mpsc-cap1-go2.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' pt 5 title 'Go(2)', 'plot/mpsc-cap1-go1.dat' using 1:2 with linespoints lw 1 dt 2 lc rgb '#8fd18a' pt 4 title 'Go(1)', 'plot/mpsc-cap1-baseline.dat' using 1:2 with linespoints lw 2 lc rgb '#d62728' pt 9 title 'baseline'
set title 'capacity 16'
plot 'plot/mpsc-cap16-libgocc.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'libgocc', 'plot/mpsc-cap16-go2.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' pt 5 title 'Go(2)', 'plot/mpsc-cap16-go1.dat' using 1:2 with linespoints lw 1 dt 2 lc rgb '#8fd18a' pt 4 title 'Go(1)', 'plot/mpsc-cap16-baseline.dat' using 1:2 with linespoints lw 2 lc rgb '#d62728' pt 9 title 'baseline'
set title 'capacity 1024'
plot 'plot/mpsc-cap1024-libgocc.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'libgocc', 'plot/mpsc-cap1024-go2.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' pt 5 title 'Go(2)', 'plot/mpsc-cap1024-go1.dat' using 1:2 with linespoints lw 1 dt 2 lc rgb '#8fd18a' pt 4 title 'Go(1)', 'plot/mpsc-cap1024-baseline.dat' using 1:2 with linespoints lw 2 lc rgb '#d62728' pt 9 title 'baseline'
unset multiplot
unset logscale x
set xrange [*:*]
set output 'chan-mpmc.png'
set multiplot layout 1,3 title 'chan/mpmc: ns per value vs threads per side (t1 = spsc; lower is better)'
set logscale x 2
set xlabel 'threads per side'
set ylabel 'ns/op'
set xrange [0.8:20]
set title 'capacity 1'
plot 'plot/mpmc-cap1-libgocc.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'libgocc', 'plot/mpmc-cap1-go2.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' pt 5 title 'Go(2)', 'plot/mpmc-cap1-go1.dat' using 1:2 with linespoints lw 1 dt 2 lc rgb '#8fd18a' pt 4 title 'Go(1)', 'plot/mpmc-cap1-baseline.dat' using 1:2 with linespoints lw 2 lc rgb '#d62728' pt 9 title 'baseline', 'plot/mpmc-cap1-libgocc-tasks.dat' using 1:2 with linespoints lw 2 lc rgb '#9467bd' pt 13 title 'libgocc tasks'
set title 'capacity 16'
plot 'plot/mpmc-cap16-libgocc.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'libgocc', 'plot/mpmc-cap16-go2.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' pt 5 title 'Go(2)', 'plot/mpmc-cap16-go1.dat' using 1:2 with linespoints lw 1 dt 2 lc rgb '#8fd18a' pt 4 title 'Go(1)', 'plot/mpmc-cap16-baseline.dat' using 1:2 with linespoints lw 2 lc rgb '#d62728' pt 9 title 'baseline', 'plot/mpmc-cap16-libgocc-tasks.dat' using 1:2 with linespoints lw 2 lc rgb '#9467bd' pt 13 title 'libgocc tasks'
set title 'capacity 1024'
plot 'plot/mpmc-cap1024-libgocc.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' pt 7 title 'libgocc', 'plot/mpmc-cap1024-go2.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' pt 5 title 'Go(2)', 'plot/mpmc-cap1024-go1.dat' using 1:2 with linespoints lw 1 dt 2 lc rgb '#8fd18a' pt 4 title 'Go(1)', 'plot/mpmc-cap1024-baseline.dat' using 1:2 with linespoints lw 2 lc rgb '#d62728' pt 9 title 'baseline', 'plot/mpmc-cap1024-libgocc-tasks.dat' using 1:2 with linespoints lw 2 lc rgb '#9467bd' pt 13 title 'libgocc tasks'
unset multiplot
unset logscale x
set xrange [*:*]
set output 'backpressure.png'
set multiplot layout 1,3 title 'worker pool, 4 workers, queue 64, 1 ms jobs: latency of accepted jobs (arrival -> done) vs offered load'
set logscale x 2
set xlabel 'offered load (x capacity)'
set ylabel 'ms'
set xrange [0.4:5]
set title 'block'
plot 'plot/load-block-libgocc-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 1 title 'libgocc p50', 'plot/load-block-libgocc-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 2 title 'libgocc p99', 'plot/load-block-libgocc-p99.9.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 3 title 'libgocc p99.9', 'plot/load-block-go2-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 1 title 'Go(2) p50', 'plot/load-block-go2-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 2 title 'Go(2) p99', 'plot/load-block-go2-p99.9.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 3 title 'Go(2) p99.9'
set title 'shed'
plot 'plot/load-shed-libgocc-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 1 title 'libgocc p50', 'plot/load-shed-libgocc-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 2 title 'libgocc p99', 'plot/load-shed-libgocc-p99.9.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 3 title 'libgocc p99.9', 'plot/load-shed-go2-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 1 title 'Go(2) p50', 'plot/load-shed-go2-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 2 title 'Go(2) p99', 'plot/load-shed-go2-p99.9.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 3 title 'Go(2) p99.9'
set title 'deadline'
plot 'plot/load-deadline-libgocc-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 1 title 'libgocc p50', 'plot/load-deadline-libgocc-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 2 title 'libgocc p99', 'plot/load-deadline-libgocc-p99.9.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 3 title 'libgocc p99.9', 'plot/load-deadline-go2-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 1 title 'Go(2) p50', 'plot/load-deadline-go2-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 2 title 'Go(2) p99', 'plot/load-deadline-go2-p99.9.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 3 title 'Go(2) p99.9'
unset multiplot
unset logscale x
set xrange [*:*]
set terminal pngcairo size 700,480 font 'sans,10'
set output 'pipeline.png'
set title 'pipeline with a 20 µs stage: latency source -> sink vs buffer'
set logscale x 2
set xlabel 'buffer of each channel'
set ylabel 'ms'
set xrange [0.7:1500]
plot 'plot/pipeline-libgocc-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 1 title 'libgocc p50', 'plot/pipeline-libgocc-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 2 title 'libgocc p99', 'plot/pipeline-go2-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 1 title 'Go(2) p50', 'plot/pipeline-go2-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#2ca02c' dt 2 title 'Go(2) p99', 'plot/pipeline-go1-p50.dat' using 1:2 with linespoints lw 2 lc rgb '#8fd18a' dt 1 title 'Go(1) p50', 'plot/pipeline-go1-p99.dat' using 1:2 with linespoints lw 2 lc rgb '#8fd18a' dt 2 title 'Go(1) p99'
