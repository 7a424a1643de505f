import { createApp } from 'vue';
import { createPinia } from 'pinia';
import App from './App.vue';
import { connectBridge } from './bridge';
import { bridgeKey } from './composables/useBridge';
import './styles.css';

const app = createApp(App);
app.use(createPinia());
app.provide(bridgeKey, connectBridge());
app.mount('#app');
