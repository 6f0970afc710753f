# gnuplot plot/charts.gp, run in the results directory (bench/report.py)
set encoding utf8
set terminal pngcairo size 1500,480 font 'sans,10'
set grid
set key top left
set logscale y
